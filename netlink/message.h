// A netlink request under construction, on libmnl. Sequence and port id are set when sent.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <libmnl/libmnl.h>

#include <cstdint>
#include <string>
#include <vector>

namespace plumb::netlink {

// Whether a whole message starts at nlh within len bytes: libmnl's mnl_nlmsg_ok with the
// length compared unsigned (libmnl casts it to int, so a length past 2 GiB passes its check
// and mnl_nlmsg_next jumps far outside the buffer). Walk replies with this and mnl_nlmsg_next.
inline bool messageOk(const nlmsghdr* nlh, int len) {
  return len >= static_cast<int>(sizeof(nlmsghdr)) && nlh->nlmsg_len >= sizeof(nlmsghdr) &&
         nlh->nlmsg_len <= static_cast<unsigned>(len);
}

// Attribute walks (libmnl's mnl_attr_for_each macros do not compile as C++).
template <class F>
void forEachAttr(const void* start, const void* tail, F&& f) {
  const auto* attr = static_cast<const nlattr*>(start);
  while (mnl_attr_ok(attr, static_cast<int>(static_cast<const char*>(tail) -
                                            reinterpret_cast<const char*>(attr)))) {
    f(attr);
    attr = mnl_attr_next(attr);
  }
}
// A message's family header (ifinfomsg, ifaddrmsg, rtmsg, ...), or null when the payload is
// too short to hold one: a reply is read only as far as it goes.
template <class T>
const T* familyHeader(const nlmsghdr* nlh) {
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(T)) return nullptr;
  return static_cast<const T*>(mnl_nlmsg_get_payload(nlh));
}
// The attributes of a message after its family header of size offset.
template <class F>
void forEachAttr(const nlmsghdr* nlh, size_t offset, F&& f) {
  // To the message's own end: libmnl's payload tail is its length aligned up, up to 3 bytes
  // past a last message whose length is not a multiple of 4.
  const char* end = reinterpret_cast<const char*>(nlh) + nlh->nlmsg_len;
  forEachAttr(mnl_nlmsg_get_payload_offset(nlh, offset), end, f);
}
template <class F>
void forEachNested(const nlattr* nest, F&& f) {
  const char* start = static_cast<const char*>(mnl_attr_get_payload(nest));
  forEachAttr(start, start + mnl_attr_get_payload_len(nest), f);
}

class Message {
 public:
  Message(uint16_t type, uint16_t flags);
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  template <class T>
  T* putHeader() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(hdr_, sizeof(T)));
  }
  void putU8(uint16_t type, uint8_t v) { mnl_attr_put_u8(hdr_, type, v); }
  void putU16(uint16_t type, uint16_t v) { mnl_attr_put_u16(hdr_, type, v); }
  void putU32(uint16_t type, uint32_t v) { mnl_attr_put_u32(hdr_, type, v); }
  void putStr(uint16_t type, const std::string& v) { mnl_attr_put_strz(hdr_, type, v.c_str()); }
  void put(uint16_t type, size_t len, const void* data) { mnl_attr_put(hdr_, type, len, data); }
  nlattr* nestStart(uint16_t type) { return mnl_attr_nest_start(hdr_, type); }
  void nestEnd(nlattr* nest) { mnl_attr_nest_end(hdr_, nest); }

  nlmsghdr* hdr() { return hdr_; }
  const nlmsghdr* hdr() const { return hdr_; }
  const uint8_t* data() const { return buf_.data(); }
  size_t size() const { return hdr_->nlmsg_len; }

 private:
  std::vector<uint8_t> buf_;
  nlmsghdr* hdr_;
};

}  // namespace plumb::netlink
