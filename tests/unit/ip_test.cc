#include "base/ip.h"

#include <gtest/gtest.h>

namespace plumb {
namespace {

TEST(IpAddr, ParsesAndFormatsBothFamilies) {
  auto v4 = IpAddr::parse("198.18.0.5");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->isV4());
  EXPECT_EQ(v4->str(), "198.18.0.5");
  auto v6 = IpAddr::parse("2001:db8::1");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->isV6());
  EXPECT_EQ(v6->str(), "2001:db8::1");
  EXPECT_FALSE(IpAddr::parse("198.18.0.256").ok());
  EXPECT_FALSE(IpAddr::parse("").ok());
  EXPECT_FALSE(IpAddr::parse("eth0").ok());
}

TEST(IpAddr, ArithmeticWrapsWithinFamily) {
  auto a = *IpAddr::parse("198.18.0.255");
  EXPECT_EQ(a.plus(1).str(), "198.18.1.0");
  EXPECT_EQ(a.plus(-255).str(), "198.18.0.0");
  EXPECT_EQ(IpAddr::parse("255.255.255.255")->plus(1).str(), "0.0.0.0");
  EXPECT_EQ(IpAddr::parse("2001:db8::ffff")->plus(1).str(), "2001:db8::1:0");
  EXPECT_LT(*IpAddr::parse("198.18.0.9"), *IpAddr::parse("198.18.0.10"));
}

TEST(IpPrefix, ParsesAndComputesBounds) {
  auto p = IpPrefix::parse("198.18.0.77/24");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->network().str(), "198.18.0.0/24");
  EXPECT_EQ(p->last().str(), "198.18.0.255");
  EXPECT_TRUE(p->contains(*IpAddr::parse("198.18.0.1")));
  EXPECT_FALSE(p->contains(*IpAddr::parse("198.18.1.1")));
  EXPECT_FALSE(p->contains(*IpAddr::parse("2001:db8::1")));
  EXPECT_TRUE(p->overlaps(*IpPrefix::parse("198.18.0.0/16")));
  EXPECT_FALSE(p->overlaps(*IpPrefix::parse("198.19.0.0/16")));
  auto v6 = IpPrefix::parse("2001:db8:1::5/64");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->network().str(), "2001:db8:1::/64");
  // The whole space: every bit a host bit (a shift by 128 was undefined; UBSan caught it).
  EXPECT_EQ(IpPrefix::parse("2001:db8::1/0")->network().str(), "::/0");
  EXPECT_EQ(IpPrefix::parse("198.18.0.1/0")->network().str(), "0.0.0.0/0");
  EXPECT_TRUE(IpPrefix::parse("::/0")->contains(*IpAddr::parse("2001:db8::1")));
}

TEST(IpPrefix, RejectsBadInput) {
  EXPECT_FALSE(IpPrefix::parse("198.18.0.5").ok());
  EXPECT_TRUE(IpPrefix::parse("198.18.0.5", true).ok());
  EXPECT_EQ(IpPrefix::parse("198.18.0.5", true)->len(), 32);
  EXPECT_FALSE(IpPrefix::parse("198.18.0.5/33").ok());
  EXPECT_FALSE(IpPrefix::parse("198.18.0.5/").ok());
  EXPECT_FALSE(IpPrefix::parse("198.18.0.5/2x").ok());
  EXPECT_FALSE(IpPrefix::parse("2001:db8::/129").ok());
  EXPECT_FALSE(IpPrefix::parse("bogus/24").ok());
}

TEST(MacAddr, ParsesFormatsAndDerives) {
  auto m = MacAddr::parse("02:42:AC:11:00:02");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->str(), "02:42:ac:11:00:02");
  EXPECT_FALSE(m->isMulticast());
  EXPECT_TRUE(MacAddr::parse("01:00:5e:00:00:01")->isMulticast());
  EXPECT_FALSE(MacAddr::parse("02:42:ac:11:00").ok());
  EXPECT_FALSE(MacAddr::parse("02:42:ac:11:00:zz").ok());
  auto a = MacAddr::fromName("web1");
  EXPECT_EQ(a, MacAddr::fromName("web1"));
  EXPECT_NE(a, MacAddr::fromName("web2"));
  EXPECT_FALSE(a.isMulticast());
  EXPECT_EQ(a.data()[0] & 0x02, 0x02);  // locally administered
}

}  // namespace
}  // namespace plumb
