// The one set of name rules every front end and the engine share (base/names.h), and the
// macvlan modes the core offers.
#include <gtest/gtest.h>

#include <string>

#include "base/names.h"
#include "plugin/core/types.h"

namespace plumb {
namespace {

TEST(Names, IfnameRules) {
  EXPECT_TRUE(validateIfname("eth0").ok());
  EXPECT_TRUE(validateIfname("abcdefghijklmno").ok());    // 15
  EXPECT_FALSE(validateIfname("abcdefghijklmnop").ok());  // 16
  EXPECT_FALSE(validateIfname("").ok());
  EXPECT_FALSE(validateIfname("a/b").ok());
  EXPECT_FALSE(validateIfname("a:b").ok());
  EXPECT_FALSE(validateIfname("..").ok());
  EXPECT_FALSE(validateIfname("a b").ok());
  EXPECT_FALSE(validateIfname("eth\xff").ok());
  EXPECT_NE(validateIfname("abcdefghijklmnop").error().message.find("longer than 15"),
            std::string::npos);
}

TEST(Names, IdRules) {
  EXPECT_TRUE(validateId("container id", "0123abcdef").ok());
  EXPECT_TRUE(validateId("container id", "docker-0123abcdef").ok());
  EXPECT_TRUE(validateId("container id", "a.b_c-d").ok());
  EXPECT_TRUE(validateId("container id", std::string(128, 'a')).ok());
  EXPECT_FALSE(validateId("container id", "").ok());
  EXPECT_FALSE(validateId("container id", "-a").ok());
  EXPECT_FALSE(validateId("container id", ".a").ok());
  EXPECT_FALSE(validateId("container id", "a..b").ok());
  EXPECT_FALSE(validateId("container id", "a/b").ok());
  EXPECT_FALSE(validateId("container id", "a b").ok());
  EXPECT_FALSE(validateId("container id", "ctr\xff").ok());
  EXPECT_FALSE(validateId("container id", std::string(129, 'a')).ok());
  // Any length is refused without recursion (a regex overflowed the stack on 26,000 bytes),
  // and the message quotes only the start of it.
  auto huge = validateId("container id", std::string(1 << 20, 'a'));
  ASSERT_FALSE(huge.ok());
  EXPECT_LT(huge.error().message.size(), 200u);
  EXPECT_NE(huge.error().message.find("longer than 128"), std::string::npos);
  // Messages stay printable whatever the input held.
  auto odd = validateId("container id", "a\xff\n");
  ASSERT_FALSE(odd.ok());
  for (char c : odd.error().message) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << odd.error().message;
}

TEST(Names, UnicastMac) {
  EXPECT_TRUE(checkUnicast(*MacAddr::parse("02:00:00:00:00:01")).ok());
  EXPECT_EQ(checkUnicast(*MacAddr::parse("01:00:5e:00:00:01")).error().message,
            "MAC address 01:00:5e:00:00:01 is a multicast address");
  EXPECT_EQ(checkUnicast(*MacAddr::parse("00:00:00:00:00:00")).error().message,
            "MAC address 00:00:00:00:00:00 is all zeros");
}

TEST(Names, MacvlanModes) {
  EXPECT_EQ(*core::parseMacvlanMode("private"), core::MacvlanMode::kPrivate);
  EXPECT_EQ(*core::parseMacvlanMode(""), core::MacvlanMode::kBridge);
  EXPECT_EQ(*core::parseMacvlanMode("passthru"), core::MacvlanMode::kPassthru);
  EXPECT_FALSE(core::parseMacvlanMode("bogus").ok());
  EXPECT_EQ(*core::parseMacvlanMode("source"), core::MacvlanMode::kSource);
  for (auto m : {core::MacvlanMode::kBridge, core::MacvlanMode::kPrivate, core::MacvlanMode::kVepa,
                 core::MacvlanMode::kPassthru, core::MacvlanMode::kSource})
    EXPECT_EQ(*core::parseMacvlanMode(core::macvlanModeName(m)), m);
}

}  // namespace
}  // namespace plumb
