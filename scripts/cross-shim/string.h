/* Minimal string.h for `make check-targets` (see TargetConditionals.h here): the few
 * functions ring's C code declares use of, so it compiles for iOS without an Apple SDK. */
#ifndef CUBECHAT_STRING_SHIM
#define CUBECHAT_STRING_SHIM
#include <stddef.h>
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
#endif
