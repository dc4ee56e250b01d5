/* Minimal stand-in for Apple's TargetConditionals.h, used only by `make check-targets` to
 * compile C dependencies (ring) for aarch64-apple-ios on Linux, where no Apple SDK exists.
 * Real iOS builds (ios/build-xcframework.sh, on macOS) use the SDK's header. */
#ifndef CUBECHAT_TARGET_CONDITIONALS_SHIM
#define CUBECHAT_TARGET_CONDITIONALS_SHIM
#define TARGET_OS_MAC 1
#define TARGET_OS_OSX 0
#define TARGET_OS_IPHONE 1
#define TARGET_OS_IOS 1
#define TARGET_OS_TV 0
#define TARGET_OS_WATCH 0
#define TARGET_OS_VISION 0
#define TARGET_OS_SIMULATOR 0
#define TARGET_OS_MACCATALYST 0
#define TARGET_CPU_ARM64 1
#define TARGET_CPU_X86_64 0
#endif
