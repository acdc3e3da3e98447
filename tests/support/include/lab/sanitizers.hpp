// Whether this translation unit is built with ThreadSanitizer (g++ defines
// __SANITIZE_THREAD__; clang answers __has_feature(thread_sanitizer)).
#pragma once

namespace lab::testing {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif

}  // namespace lab::testing
