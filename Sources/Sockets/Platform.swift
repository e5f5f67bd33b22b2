// Which platforms Sockets builds on is decided in one place: Package.swift defines SOCKETS_PLATFORM_SUPPORTED
// for each platform that has a readiness backend (Sources/Sockets/Readiness) and a system layer
// (Sources/Sockets/System): today Linux, with epoll. Every other file of this module is compiled only under
// that condition, so that anywhere else the build stops at this one error instead of at dozens.
#if !SOCKETS_PLATFORM_SUPPORTED
#error(
    "Sockets supports Linux only: its readiness layer is built on epoll, and a kqueue backend for macOS is not written yet. Build on Linux (or in a Linux container); README.md, section 'Platforms and dependencies', says more."
)
#endif
