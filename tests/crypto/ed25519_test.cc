#include "crypto/ed25519.h"

#include <gtest/gtest.h>

#include "crypto/quorum.h"
#include "crypto/signature_memo.h"
#include "vectors.h"

namespace attestnet::crypto {
namespace {

Bytes hex(const std::string& s) {
  return *from_hex(s);
}

TEST(Ed25519, Rfc8032Section71KnownAnswers) {
  REQUIRE_VECTORS();
  auto j = test::load_json(test::vectors_dir() / "crypto/ed25519/rfc8032_tests_1_2_3.json");
  ASSERT_EQ(j["vectors"].size(), 3u);
  for (const auto& v : j["vectors"]) {
    Seed seed;
    Bytes sk = hex(v["secret_key"]);
    std::copy(sk.begin(), sk.end(), seed.begin());
    SecretKey key = SecretKey::from_seed(seed);
    EXPECT_EQ(to_hex(as_view(Bytes(key.public_key().begin(), key.public_key().end()))),
              v["public_key"].get<std::string>())
        << v["name"];
    Bytes msg = hex(v["message"]);
    Signature sig = key.sign(as_view(msg));
    EXPECT_EQ(to_hex(ByteView(sig.data(), sig.size())), v["signature"].get<std::string>())
        << v["name"];
    EXPECT_TRUE(verify(key.public_key(), as_view(msg), sig));
    sig[0] ^= 1;
    EXPECT_FALSE(verify(key.public_key(), as_view(msg), sig));
  }
}

TEST(Ed25519, WycheproofVerification) {
  REQUIRE_VECTORS();
  auto j = test::load_json(test::vectors_dir() / "crypto/ed25519/wycheproof_ed25519_test.json");
  size_t checked = 0;
  for (const auto& g : j["testGroups"]) {
    Bytes pkb = hex(g["publicKey"]["pk"]);
    ASSERT_EQ(pkb.size(), 32u);
    PublicKey pk;
    std::copy(pkb.begin(), pkb.end(), pk.begin());
    for (const auto& t : g["tests"]) {
      Bytes msg = hex(t["msg"]);
      Bytes sigb = hex(t["sig"]);
      bool expect_valid = t["result"] == "valid";
      bool ok = false;
      if (sigb.size() == 64) {
        Signature sig;
        std::copy(sigb.begin(), sigb.end(), sig.begin());
        ok = verify(pk, as_view(msg), sig);
      }
      EXPECT_EQ(ok, expect_valid) << "tcId " << t["tcId"] << ": " << t["comment"];
      ++checked;
    }
  }
  EXPECT_EQ(checked, j["numberOfTests"].get<size_t>());
}

class QuorumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      keys.push_back(SecretKey::from_seed(test_seed("qc-" + std::to_string(i))));
      committee.push_back(keys.back().public_key());
    }
  }
  QuorumCertificate sign_by(std::initializer_list<uint32_t> who) {
    QuorumCertificate qc;
    for (uint32_t i : who) qc.add(i, keys[i].sign(as_view(msg)));
    return qc;
  }
  std::vector<SecretKey> keys;
  std::vector<PublicKey> committee;
  Bytes msg = {'v', 'o', 't', 'e'};
};

TEST_F(QuorumTest, AcceptsThreshold) {
  EXPECT_TRUE(verify_quorum(sign_by({0, 2, 3}), committee, 3, as_view(msg)).ok());
}

TEST_F(QuorumTest, RejectsBelowThreshold) {
  auto st = verify_quorum(sign_by({0, 2}), committee, 3, as_view(msg));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kBelowThreshold);
}

TEST_F(QuorumTest, RejectsDuplicateSigner) {
  QuorumCertificate qc = sign_by({0, 1, 2});
  qc.sigs.push_back(qc.sigs[0]);  // bypass add(), as a hostile encoder would
  EXPECT_EQ(verify_quorum(qc, committee, 3, as_view(msg)).error().code, Errc::kDuplicateSigner);
}

TEST_F(QuorumTest, RejectsUnknownSigner) {
  QuorumCertificate qc = sign_by({0, 1, 2});
  qc.sigs[2].signer = 9;
  EXPECT_EQ(verify_quorum(qc, committee, 3, as_view(msg)).error().code, Errc::kUnknownSigner);
}

TEST_F(QuorumTest, RejectsBadSignature) {
  QuorumCertificate qc = sign_by({0, 1, 2});
  qc.sigs[1].sig[5] ^= 0x20;
  auto st = verify_quorum(qc, committee, 3, as_view(msg));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kBadSignature);
  EXPECT_NE(st.error().reason.find("signer 1"), std::string::npos);
}

TEST_F(QuorumTest, RejectsSignatureOverAnotherMessage) {
  QuorumCertificate qc = sign_by({0, 1, 2});
  Bytes other = {'x'};
  EXPECT_EQ(verify_quorum(qc, committee, 3, as_view(other)).error().code, Errc::kBadSignature);
}

TEST_F(QuorumTest, EncodingRoundTrips) {
  QuorumCertificate qc = sign_by({3, 1, 2});
  Writer w;
  qc.encode(w);
  Reader r(as_view(w.data()));
  auto back = QuorumCertificate::decode(r);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, qc);
  EXPECT_EQ(back->sigs[0].signer, 1u);  // kept sorted
}

// The memo changes cost, never results; its counters say which checks cost a verification.
TEST(SignatureMemo, VerifiesOnceAndCountsHitsAndVerifications) {
  auto k = SecretKey::from_seed(test_seed("memo"));
  Bytes msg = {1, 2, 3};
  Signature sig = k.sign(as_view(msg));
  Signature bad = sig;
  bad[5] ^= 1;
  SignatureMemo memo;
  EXPECT_TRUE(memo.verify(k.public_key(), as_view(msg), sig));
  EXPECT_TRUE(memo.verify(k.public_key(), as_view(msg), sig));
  EXPECT_FALSE(memo.verify(k.public_key(), as_view(msg), bad));
  EXPECT_FALSE(memo.verify(k.public_key(), as_view(msg), bad));
  EXPECT_EQ(memo.verifications(), 2u);
  EXPECT_EQ(memo.hits(), 2u);
  // Another message under the same signature is another question.
  Bytes other = {1, 2, 4};
  EXPECT_FALSE(memo.verify(k.public_key(), as_view(other), sig));
  EXPECT_EQ(memo.verifications(), 3u);
}

TEST(SignatureMemo, AnOwnSignatureIsKnownWithoutAVerification) {
  auto k = SecretKey::from_seed(test_seed("memo-own"));
  Bytes msg = {9, 9};
  Signature sig = k.sign(as_view(msg));
  SignatureMemo memo;
  memo.note_own(k.public_key(), as_view(msg), sig);
  EXPECT_TRUE(memo.verify(k.public_key(), as_view(msg), sig));
  EXPECT_EQ(memo.verifications(), 0u);
  EXPECT_EQ(memo.hits(), 1u);
}

TEST(SignatureMemo, HoldsAtMostItsBoundAndKeepsTheRecentHalf) {
  auto k = SecretKey::from_seed(test_seed("memo-bound"));
  SignatureMemo memo(8, 2);
  std::vector<std::pair<Bytes, Signature>> signed_;
  for (uint8_t i = 0; i < 20; ++i) {
    Bytes msg = {i};
    signed_.emplace_back(msg, k.sign(as_view(msg)));
    memo.note_own(k.public_key(), as_view(msg), signed_.back().second);
    EXPECT_LE(memo.size(), 8u);
  }
  // The last 4 (half the bound) are always known; the first ones were forgotten.
  for (size_t i = 16; i < 20; ++i)
    EXPECT_TRUE(memo.verify(k.public_key(), as_view(signed_[i].first), signed_[i].second));
  EXPECT_EQ(memo.verifications(), 0u);
  EXPECT_TRUE(memo.verify(k.public_key(), as_view(signed_[0].first), signed_[0].second));
  EXPECT_EQ(memo.verifications(), 1u) << "forgotten: verified again, with the same result";
  Signature bad = signed_[1].second;
  bad[0] ^= 1;
  for (int i = 0; i < 3; ++i)
    EXPECT_FALSE(memo.verify(k.public_key(), as_view(signed_[1].first), bad));
  EXPECT_LE(memo.size(), 8u + 2u);
}

}  // namespace
}  // namespace attestnet::crypto
