// deleteLinkPromptly: the caller waits for a link to leave its namespace, not for the kernel to
// free it. A grandchild process (so that nobody has to reap it: init does) sends the request
// and reports a failure on a pipe; the caller returns on the link's RTM_DELLINK notification.
// A long-lived process (base/process.h) sends it from a thread of its own instead.
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "base/fd.h"
#include "base/process.h"
#include "netlink/link.h"

namespace plumb::netlink {
namespace {

// What the grandchild reports when the kernel refused: the error's code, errno and message.
struct Report {
  int code = 0;
  int sys_errno = 0;
  char message[400] = {};
};

// Sends the request from the calling thread's netns, unless entering it failed (`entered`),
// sits out the kernel's freeing, and writes a refusal to report_fd. True when it was deleted.
bool deleteAndReport(Status entered, int index, int report_fd) {
  Status st = std::move(entered);
  if (st.ok()) {
    auto own = NlSocket::open();
    st = own.ok() ? deleteLink(*own, index) : Status(std::move(own).error());
  }
  if (!st.ok()) {
    Report r;
    r.code = static_cast<int>(st.error().code);
    r.sys_errno = st.error().sys_errno;
    std::strncpy(r.message, st.error().message.c_str(), sizeof(r.message) - 1);
    (void)!::write(report_fd, &r, sizeof(r));
  }
  return st.ok();
}

// The sender as a grandchild process.
[[noreturn]] void deleteInGrandchild(const Netns* ns, int index, int report_fd, int null_fd) {
  // Nothing of the caller's may stay open through it: a CNI runtime reads stdout to its end.
  for (int fd = 0; fd < 3; ++fd) ::dup2(null_fd, fd);
  Status entered =
      ns && !enterForGood(*ns) ? failErrno(errno, "failed to enter netns " + ns->path()) : Status();
  ::_exit(deleteAndReport(std::move(entered), index, report_fd) ? 0 : 1);
}

// The sender on a thread of a long-lived process (its netns is the thread's own).
void deleteOnThread(UniqueFd ns_fd, int index, UniqueFd report) {
  Status entered = ns_fd.valid() && ::setns(ns_fd.get(), CLONE_NEWNET) != 0
                       ? failErrno(errno, "failed to enter the link's netns")
                       : Status();
  (void)deleteAndReport(std::move(entered), index, report.get());
}

// Asked directly, for when no notification can say so.
bool gone(NlSocket& s, int index) {
  auto link = getLink(s, index);
  return !link.ok() && link.error().code == Errc::kNotFound;
}

bool isDeletionOf(const nlmsghdr* nlh, int index) {
  if (nlh->nlmsg_type != RTM_DELLINK) return false;
  const auto* ifi = familyHeader<ifinfomsg>(nlh);
  return ifi && ifi->ifi_index == index;
}

// Returns on the link's RTM_DELLINK, or on the sender's refusal or end.
Status awaitDeletion(NlSocket& s, NlSocket& events, const UniqueFd& report_r, int index);

}  // namespace

Status deleteLinkPromptly(NlSocket& s, const Netns* ns, int index) {
  // Subscribed before the request goes out, so its notification cannot be missed.
  auto events = ns ? NlSocket::subscribeIn(*ns, RTMGRP_LINK) : NlSocket::subscribe(RTMGRP_LINK);
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  int report[2];
  if (!events.ok() || !null.valid() || ::pipe2(report, O_CLOEXEC) != 0) return deleteLink(s, index);
  UniqueFd report_r(report[0]), report_w(report[1]);
  if (isLongLived()) {
    UniqueFd ns_fd(ns ? ::fcntl(ns->fd(), F_DUPFD_CLOEXEC, 0) : -1);
    if (ns && !ns_fd.valid()) return deleteLink(s, index);
    std::thread(deleteOnThread, std::move(ns_fd), index, std::move(report_w)).detach();
    return awaitDeletion(s, *events, report_r, index);
  }
  pid_t child = ::fork();
  if (child < 0) return deleteLink(s, index);
  if (child == 0) {
    report_r.reset();
    pid_t grandchild = ::fork();
    if (grandchild == 0) deleteInGrandchild(ns, index, report_w.get(), null.get());
    ::_exit(grandchild < 0 ? 1 : 0);
  }
  report_w.reset();
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    report_r.reset();
    return deleteLink(s, index);  // no grandchild was started
  }
  return awaitDeletion(s, *events, report_r, index);
}

namespace {

Status awaitDeletion(NlSocket& s, NlSocket& events, const UniqueFd& report_r, int index) {
  bool events_ok = true;
  for (;;) {
    pollfd fds[2] = {{report_r.get(), POLLIN, 0}, {events_ok ? events.fd() : -1, POLLIN, 0}};
    int n = ::poll(fds, 2, 10000);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      return fail(Errc::kTryAgain, "deleting link " + std::to_string(index) + " timed out");
    if (fds[0].revents) {
      Report r;
      ssize_t got = ::read(report_r.get(), &r, sizeof(r));
      if (got == static_cast<ssize_t>(sizeof(r))) {
        r.message[sizeof(r.message) - 1] = '\0';
        return fail(Error{static_cast<Errc>(r.code), r.sys_errno, r.message});
      }
      if (got < 0 && errno == EINTR) continue;
      // Over without a report (acked before any event came, or the grandchild was killed):
      // gone is done; otherwise ask again, the plain way.
      return gone(s, index) ? Status() : deleteLink(s, index);
    }
    if (fds[1].revents) {
      bool deleted = false;
      auto st = events.next([&](const nlmsghdr* nlh) -> Status {
        deleted |= isDeletionOf(nlh, index);
        return {};
      });
      if (deleted) return {};
      if (!st.ok()) {
        // Notifications overran: look instead, then wait for the grandchild's word alone.
        if (gone(s, index)) return {};
        events_ok = false;
      }
    }
  }
}

}  // namespace

}  // namespace plumb::netlink
