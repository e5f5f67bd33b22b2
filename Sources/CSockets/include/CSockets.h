#ifndef CSOCKETS_H
#define CSOCKETS_H

// Thin wrappers over the system calls that Swift's Glibc module hides or imports awkwardly.
// Every function returns what the system call returns; errno is left as the call set it.

#include <errno.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <netinet/in.h>

#ifdef __linux__
#include <sys/epoll.h>

int csockets_accept(int fd, struct sockaddr *address, socklen_t *length);
int csockets_epoll_create(void);
int csockets_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int csockets_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data);
int csockets_epoll_delete(int epfd, int fd);
int csockets_epoll_wait(int epfd, struct epoll_event *events, int count, int timeout);
/// A non-blocking, close-on-exec timerfd on the monotonic clock, disarmed.
int csockets_timerfd_create(void);
/// Arms the timerfd to expire every `interval` nanoseconds, the first time `interval` from now; 0 disarms it
/// (and clears expirations not yet read).
int csockets_timerfd_set_interval(int fd, int64_t interval);
/// A non-blocking, close-on-exec eventfd.
int csockets_eventfd_create(void);
/// Adds one to the eventfd's counter (wakes an epoll_wait that watches it).
int csockets_eventfd_signal(int fd);
/// Reads the eventfd's counter (or a timerfd's count of expirations) back to zero.
int csockets_eventfd_reset(int fd);
uint64_t csockets_epoll_event_data(const struct epoll_event *events, int index);
uint32_t csockets_epoll_event_flags(const struct epoll_event *events, int index);

static const uint32_t CSOCKETS_EPOLLIN = EPOLLIN;
static const uint32_t CSOCKETS_EPOLLOUT = EPOLLOUT;
static const uint32_t CSOCKETS_EPOLLERR = EPOLLERR;
static const uint32_t CSOCKETS_EPOLLHUP = EPOLLHUP;
static const uint32_t CSOCKETS_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CSOCKETS_EPOLLET = EPOLLET;

/// Receives up to `count` datagrams into `count` buffers of `size` bytes each, laid end to end in
/// `buffers`; writes each datagram's length, its flags and its sender.
int csockets_recvmmsg(int fd, uint8_t *buffers, size_t size, unsigned int count,
                      size_t *lengths, int *flags, struct sockaddr_storage *senders);
/// Sends `count` datagrams, datagram i being `lengths[i]` bytes at `buffers + offsets[i]`, to
/// `destinations[i]` (or to the connected peer when `destinations` is NULL).
int csockets_sendmmsg(int fd, const uint8_t *buffers, const size_t *offsets, const size_t *lengths,
                      unsigned int count, const struct sockaddr_storage *destinations,
                      const socklen_t *destinationLengths);
#endif

/// The errno of the calling thread.
int csockets_errno(void);

#endif
