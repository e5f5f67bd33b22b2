#define _GNU_SOURCE
#include "CSockets.h"
#include <string.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

int csockets_errno(void) { return errno; }

#ifdef __linux__
int csockets_accept(int fd, struct sockaddr *address, socklen_t *length) {
    return accept4(fd, address, length, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int csockets_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int csockets_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int csockets_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = data;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event);
}

int csockets_epoll_delete(int epfd, int fd) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &event);
}

int csockets_epoll_wait(int epfd, struct epoll_event *events, int count, int timeout) {
    return epoll_wait(epfd, events, count, timeout);
}

int csockets_timerfd_create(void) { return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC); }

int csockets_timerfd_set_interval(int fd, int64_t interval) {
    struct timespec period = {.tv_sec = interval / 1000000000, .tv_nsec = interval % 1000000000};
    struct itimerspec spec = {.it_interval = period, .it_value = period};
    return timerfd_settime(fd, 0, &spec, NULL);
}

int csockets_eventfd_create(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int csockets_eventfd_signal(int fd) {
    uint64_t one = 1;
    return write(fd, &one, sizeof one) == sizeof one ? 0 : -1;
}

int csockets_eventfd_reset(int fd) {
    uint64_t value;
    return read(fd, &value, sizeof value) == sizeof value ? 0 : -1;
}

uint64_t csockets_epoll_event_data(const struct epoll_event *events, int index) {
    return events[index].data.u64;
}

uint32_t csockets_epoll_event_flags(const struct epoll_event *events, int index) {
    return events[index].events;
}

#define CSOCKETS_BATCH_MAX 64

int csockets_recvmmsg(int fd, uint8_t *buffers, size_t size, unsigned int count,
                      size_t *lengths, int *flags, struct sockaddr_storage *senders) {
    struct mmsghdr messages[CSOCKETS_BATCH_MAX];
    struct iovec vectors[CSOCKETS_BATCH_MAX];
    if (count > CSOCKETS_BATCH_MAX) count = CSOCKETS_BATCH_MAX;
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned int i = 0; i < count; i++) {
        vectors[i].iov_base = buffers + i * size;
        vectors[i].iov_len = size;
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        messages[i].msg_hdr.msg_name = &senders[i];
        messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    }
    int received = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
    for (int i = 0; i < received; i++) {
        lengths[i] = messages[i].msg_len;
        flags[i] = messages[i].msg_hdr.msg_flags;
    }
    return received;
}

int csockets_sendmmsg(int fd, const uint8_t *buffers, const size_t *offsets, const size_t *lengths,
                      unsigned int count, const struct sockaddr_storage *destinations,
                      const socklen_t *destinationLengths) {
    struct mmsghdr messages[CSOCKETS_BATCH_MAX];
    struct iovec vectors[CSOCKETS_BATCH_MAX];
    if (count > CSOCKETS_BATCH_MAX) count = CSOCKETS_BATCH_MAX;
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned int i = 0; i < count; i++) {
        vectors[i].iov_base = (void *)(buffers + offsets[i]);
        vectors[i].iov_len = lengths[i];
        messages[i].msg_hdr.msg_iov = &vectors[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (destinations != NULL) {
            messages[i].msg_hdr.msg_name = (void *)&destinations[i];
            messages[i].msg_hdr.msg_namelen = destinationLengths[i];
        }
    }
    return sendmmsg(fd, messages, count, MSG_DONTWAIT | MSG_NOSIGNAL);
}
#endif
