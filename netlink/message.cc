#include "netlink/message.h"

namespace plumb::netlink {

// Large enough for any single request plumb sends (a veth with its peer nest is ~200 bytes).
constexpr size_t kRequestBuffer = 4096;

Message::Message(uint16_t type, uint16_t flags) : buf_(kRequestBuffer, 0) {
  hdr_ = mnl_nlmsg_put_header(buf_.data());
  hdr_->nlmsg_type = type;
  hdr_->nlmsg_flags = flags;
}

}  // namespace plumb::netlink
