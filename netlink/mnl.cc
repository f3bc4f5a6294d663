// libmnl, loaded the first time plumb builds or reads a netlink message.
//
// Most plugin processes never do: a CNI call is handed to the resident service (plugin/cni/
// resident.h) and VERSION answers from a constant, and a linked libmnl cost every one of them
// about 50 us in the dynamic loader (exec to main, p50 of 400, against the same empty program
// without it). The entry points plumb calls are defined here under libmnl's own names; their
// declarations are libmnl.h's, so one whose signature drifts fails to compile. Each forwards to
// the library's function, resolved once per process. libmnl is a dependency of the package:
// a process that cannot load it says so in one line and exits.
#include <libmnl/libmnl.h>

#include "base/dl.h"

namespace {

struct MnlLib {
  decltype(&::mnl_socket_open2) socket_open2 = nullptr;
  decltype(&::mnl_socket_fdopen) socket_fdopen = nullptr;
  decltype(&::mnl_socket_bind) socket_bind = nullptr;
  decltype(&::mnl_socket_close) socket_close = nullptr;
  decltype(&::mnl_socket_get_fd) socket_get_fd = nullptr;
  decltype(&::mnl_socket_get_portid) socket_get_portid = nullptr;
  decltype(&::mnl_socket_sendto) socket_sendto = nullptr;
  decltype(&::mnl_socket_setsockopt) socket_setsockopt = nullptr;
  decltype(&::mnl_nlmsg_get_payload_len) nlmsg_get_payload_len = nullptr;
  decltype(&::mnl_nlmsg_put_header) nlmsg_put_header = nullptr;
  decltype(&::mnl_nlmsg_put_extra_header) nlmsg_put_extra_header = nullptr;
  decltype(&::mnl_nlmsg_ok) nlmsg_ok = nullptr;
  decltype(&::mnl_nlmsg_next) nlmsg_next = nullptr;
  decltype(&::mnl_nlmsg_get_payload) nlmsg_get_payload = nullptr;
  decltype(&::mnl_nlmsg_get_payload_offset) nlmsg_get_payload_offset = nullptr;
  decltype(&::mnl_attr_get_type) attr_get_type = nullptr;
  decltype(&::mnl_attr_get_payload_len) attr_get_payload_len = nullptr;
  decltype(&::mnl_attr_get_payload) attr_get_payload = nullptr;
  decltype(&::mnl_attr_get_u8) attr_get_u8 = nullptr;
  decltype(&::mnl_attr_get_u32) attr_get_u32 = nullptr;
  decltype(&::mnl_attr_get_str) attr_get_str = nullptr;
  decltype(&::mnl_attr_put) attr_put = nullptr;
  decltype(&::mnl_attr_put_u8) attr_put_u8 = nullptr;
  decltype(&::mnl_attr_put_u16) attr_put_u16 = nullptr;
  decltype(&::mnl_attr_put_u32) attr_put_u32 = nullptr;
  decltype(&::mnl_attr_put_strz) attr_put_strz = nullptr;
  decltype(&::mnl_attr_nest_start) attr_nest_start = nullptr;
  decltype(&::mnl_attr_nest_end) attr_nest_end = nullptr;
  decltype(&::mnl_attr_validate) attr_validate = nullptr;
  decltype(&::mnl_attr_ok) attr_ok = nullptr;
  decltype(&::mnl_attr_next) attr_next = nullptr;

  bool resolve(const plumb::DynamicLibrary& lib) {
    return lib.resolve("mnl_socket_open2", socket_open2) &&
           lib.resolve("mnl_socket_fdopen", socket_fdopen) &&
           lib.resolve("mnl_socket_bind", socket_bind) &&
           lib.resolve("mnl_socket_close", socket_close) &&
           lib.resolve("mnl_socket_get_fd", socket_get_fd) &&
           lib.resolve("mnl_socket_get_portid", socket_get_portid) &&
           lib.resolve("mnl_socket_sendto", socket_sendto) &&
           lib.resolve("mnl_socket_setsockopt", socket_setsockopt) &&
           lib.resolve("mnl_nlmsg_get_payload_len", nlmsg_get_payload_len) &&
           lib.resolve("mnl_nlmsg_put_header", nlmsg_put_header) &&
           lib.resolve("mnl_nlmsg_put_extra_header", nlmsg_put_extra_header) &&
           lib.resolve("mnl_nlmsg_ok", nlmsg_ok) && lib.resolve("mnl_nlmsg_next", nlmsg_next) &&
           lib.resolve("mnl_nlmsg_get_payload", nlmsg_get_payload) &&
           lib.resolve("mnl_nlmsg_get_payload_offset", nlmsg_get_payload_offset) &&
           lib.resolve("mnl_attr_get_type", attr_get_type) &&
           lib.resolve("mnl_attr_get_payload_len", attr_get_payload_len) &&
           lib.resolve("mnl_attr_get_payload", attr_get_payload) &&
           lib.resolve("mnl_attr_get_u8", attr_get_u8) &&
           lib.resolve("mnl_attr_get_u32", attr_get_u32) &&
           lib.resolve("mnl_attr_get_str", attr_get_str) && lib.resolve("mnl_attr_put", attr_put) &&
           lib.resolve("mnl_attr_put_u8", attr_put_u8) &&
           lib.resolve("mnl_attr_put_u16", attr_put_u16) &&
           lib.resolve("mnl_attr_put_u32", attr_put_u32) &&
           lib.resolve("mnl_attr_put_strz", attr_put_strz) &&
           lib.resolve("mnl_attr_nest_start", attr_nest_start) &&
           lib.resolve("mnl_attr_nest_end", attr_nest_end) &&
           lib.resolve("mnl_attr_validate", attr_validate) && lib.resolve("mnl_attr_ok", attr_ok) &&
           lib.resolve("mnl_attr_next", attr_next);
  }
};

const MnlLib& mnl() { return plumb::loadOrExit<MnlLib>("libmnl.so.0", "libmnl0"); }

}  // namespace

extern "C" {

mnl_socket* mnl_socket_open2(int bus, int flags) { return mnl().socket_open2(bus, flags); }
mnl_socket* mnl_socket_fdopen(int fd) { return mnl().socket_fdopen(fd); }
int mnl_socket_bind(mnl_socket* nl, unsigned int groups, pid_t pid) {
  return mnl().socket_bind(nl, groups, pid);
}
int mnl_socket_close(mnl_socket* nl) { return mnl().socket_close(nl); }
int mnl_socket_get_fd(const mnl_socket* nl) { return mnl().socket_get_fd(nl); }
unsigned int mnl_socket_get_portid(const mnl_socket* nl) { return mnl().socket_get_portid(nl); }
ssize_t mnl_socket_sendto(const mnl_socket* nl, const void* req, size_t siz) {
  return mnl().socket_sendto(nl, req, siz);
}
int mnl_socket_setsockopt(const mnl_socket* nl, int type, void* buf, socklen_t len) {
  return mnl().socket_setsockopt(nl, type, buf, len);
}

size_t mnl_nlmsg_get_payload_len(const nlmsghdr* nlh) { return mnl().nlmsg_get_payload_len(nlh); }
nlmsghdr* mnl_nlmsg_put_header(void* buf) { return mnl().nlmsg_put_header(buf); }
void* mnl_nlmsg_put_extra_header(nlmsghdr* nlh, size_t size) {
  return mnl().nlmsg_put_extra_header(nlh, size);
}
bool mnl_nlmsg_ok(const nlmsghdr* nlh, int len) { return mnl().nlmsg_ok(nlh, len); }
nlmsghdr* mnl_nlmsg_next(const nlmsghdr* nlh, int* len) { return mnl().nlmsg_next(nlh, len); }
void* mnl_nlmsg_get_payload(const nlmsghdr* nlh) { return mnl().nlmsg_get_payload(nlh); }
void* mnl_nlmsg_get_payload_offset(const nlmsghdr* nlh, size_t offset) {
  return mnl().nlmsg_get_payload_offset(nlh, offset);
}

uint16_t mnl_attr_get_type(const nlattr* attr) { return mnl().attr_get_type(attr); }
uint16_t mnl_attr_get_payload_len(const nlattr* attr) { return mnl().attr_get_payload_len(attr); }
void* mnl_attr_get_payload(const nlattr* attr) { return mnl().attr_get_payload(attr); }
uint8_t mnl_attr_get_u8(const nlattr* attr) { return mnl().attr_get_u8(attr); }
uint32_t mnl_attr_get_u32(const nlattr* attr) { return mnl().attr_get_u32(attr); }
const char* mnl_attr_get_str(const nlattr* attr) { return mnl().attr_get_str(attr); }
void mnl_attr_put(nlmsghdr* nlh, uint16_t type, size_t len, const void* data) {
  mnl().attr_put(nlh, type, len, data);
}
void mnl_attr_put_u8(nlmsghdr* nlh, uint16_t type, uint8_t data) {
  mnl().attr_put_u8(nlh, type, data);
}
void mnl_attr_put_u16(nlmsghdr* nlh, uint16_t type, uint16_t data) {
  mnl().attr_put_u16(nlh, type, data);
}
void mnl_attr_put_u32(nlmsghdr* nlh, uint16_t type, uint32_t data) {
  mnl().attr_put_u32(nlh, type, data);
}
void mnl_attr_put_strz(nlmsghdr* nlh, uint16_t type, const char* data) {
  mnl().attr_put_strz(nlh, type, data);
}
nlattr* mnl_attr_nest_start(nlmsghdr* nlh, uint16_t type) {
  return mnl().attr_nest_start(nlh, type);
}
void mnl_attr_nest_end(nlmsghdr* nlh, nlattr* start) { mnl().attr_nest_end(nlh, start); }
int mnl_attr_validate(const nlattr* attr, enum mnl_attr_data_type type) {
  return mnl().attr_validate(attr, type);
}
bool mnl_attr_ok(const nlattr* attr, int len) { return mnl().attr_ok(attr, len); }
nlattr* mnl_attr_next(const nlattr* attr) { return mnl().attr_next(attr); }

}  // extern "C"
