#include "core/codec.h"

#include <gtest/gtest.h>

#include "core/hash.h"

namespace attestnet {
namespace {

TEST(Codec, RoundTripsEveryFieldKind) {
  Writer w;
  w.header(0x1234, 2).u8(7).u16(0xbeef).u32(0xdeadbeef).u64(0x0102030405060708ull).boolean(true);
  w.bytes(as_view(std::string_view("hello"))).hash(Hash32{1, 2, 3}).str("chain");
  Reader r(as_view(w.data()));
  EXPECT_EQ(*r.header(0x1234, 1, 2, "test"), 2);
  EXPECT_EQ(*r.u8(), 7);
  EXPECT_EQ(*r.u16(), 0xbeef);
  EXPECT_EQ(*r.u32(), 0xdeadbeefu);
  EXPECT_EQ(*r.u64(), 0x0102030405060708ull);
  EXPECT_TRUE(*r.boolean());
  EXPECT_EQ(*r.bytes(), Bytes({'h', 'e', 'l', 'l', 'o'}));
  EXPECT_EQ((*r.hash())[2], 3);
  EXPECT_EQ(*r.str(), "chain");
  EXPECT_TRUE(r.finish().ok());
}

TEST(Codec, IntegersAreLittleEndian) {
  Writer w;
  w.u32(0x01020304);
  EXPECT_EQ(w.data(), Bytes({4, 3, 2, 1}));
}

TEST(Codec, RejectsTruncation) {
  Writer w;
  w.u64(5);
  Bytes b = w.data();
  b.pop_back();
  Reader r(as_view(b));
  auto v = r.u64();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::kTruncated);
  EXPECT_NE(v.error().reason.find("need 8"), std::string::npos);
}

TEST(Codec, RejectsTrailingBytes) {
  Bytes b = {1, 2, 3};
  Reader r(as_view(b));
  ASSERT_TRUE(r.u8().ok());
  auto st = r.finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kTrailingBytes);
}

TEST(Codec, RejectsOversizeLength) {
  Writer w;
  w.u32(1000).fixed(Bytes(1000, 0));
  Reader r(as_view(w.data()), 999);
  auto v = r.bytes();
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, Errc::kOversize);
}

TEST(Codec, RejectsLengthBeyondInput) {
  Writer w;
  w.u32(50).fixed(Bytes(10, 0));
  Reader r(as_view(w.data()));
  EXPECT_EQ(r.bytes().error().code, Errc::kTruncated);
}

TEST(Codec, RejectsUnknownTagAndVersion) {
  Writer w;
  w.header(0x10, 3);
  {
    Reader r(as_view(w.data()));
    EXPECT_EQ(r.header(0x11, 1, 3, "thing").error().code, Errc::kBadTag);
  }
  {
    Reader r(as_view(w.data()));
    auto v = r.header(0x10, 1, 2, "thing");
    ASSERT_FALSE(v.ok());
    EXPECT_EQ(v.error().code, Errc::kBadVersion);
    EXPECT_NE(v.error().reason.find("version 3"), std::string::npos);
  }
}

TEST(Codec, RejectsNonCanonicalBoolean) {
  Bytes b = {2};
  Reader r(as_view(b));
  EXPECT_EQ(r.boolean().error().code, Errc::kBadValue);
}

TEST(Codec, RejectsCountThatCannotFit) {
  Writer w;
  w.u32(0xffffffff);
  Reader r(as_view(w.data()));
  EXPECT_EQ(r.count(8).error().code, Errc::kOversize);
}

TEST(Hash, Sha256KnownAnswer) {
  // FIPS 180-2 "abc"
  EXPECT_EQ(to_hex(sha256(as_view(std::string_view("abc")))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Hash, DomainsSeparate) {
  Bytes data = {1, 2, 3};
  EXPECT_NE(hash_domain("a", as_view(data)), hash_domain("b", as_view(data)));
  // The tag length is part of the input: ("ab", "c") differs from ("a", "bc").
  EXPECT_NE(hash_domain("ab", as_view(std::string_view("c"))),
            hash_domain("a", as_view(std::string_view("bc"))));
}

TEST(Hex, RoundTripAndRejectsGarbage) {
  Bytes b = {0, 0xff, 0x10};
  EXPECT_EQ(to_hex(as_view(b)), "00ff10");
  EXPECT_EQ(*from_hex("00FF10"), b);
  EXPECT_FALSE(from_hex("0g").has_value());
  EXPECT_FALSE(from_hex("abc").has_value());
}

}  // namespace
}  // namespace attestnet
