/* Minimal assert.h for `make check-targets` (see TargetConditionals.h here). */
#ifndef CUBECHAT_ASSERT_SHIM
#define CUBECHAT_ASSERT_SHIM
#define assert(e) ((void)0)
#endif
