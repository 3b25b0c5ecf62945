#include "ledger/audit.h"

namespace attestnet::ledger {
namespace {

Error at(uint64_t height, Errc code, const std::string& why) {
  return make_error(code, "height " + std::to_string(height) + ": " + why);
}

}  // namespace

Result<AuditSummary> audit_chain(const ReplicaStore& store, const Genesis& genesis,
                                 const std::function<void(uint64_t, uint64_t)>& progress) {
  AuditSummary s;
  Committee committee = genesis.committee();
  Hash32 committee_hash = committee.hash();
  Hash32 prev = genesis.hash();
  uint64_t prev_log = 0;
  uint64_t total = store.highest_header();
  for (uint64_t h = 1; h <= total; ++h) {
    auto stored = store.header(h);
    if (!stored.ok()) return at(h, stored.error().code, stored.error().reason);
    auto hdr = BlockHeader::decode(as_view(stored->first));
    if (!hdr.ok()) return at(h, hdr.error().code, "header does not decode: " + hdr.error().reason);
    if (hdr->height != h) {
      return at(h, Errc::kBadValue,
                "the header stored here says height " + std::to_string(hdr->height));
    }
    if (hdr->chain_id != genesis.chain_id) {
      return at(h, Errc::kWrongChain, "header of chain \"" + hdr->chain_id + "\"");
    }
    if (hdr->prev_hash != prev) {
      return at(h, Errc::kProofMismatch,
                "prev_hash " + short_hex(hdr->prev_hash) + " does not match the previous header " +
                    short_hex(prev));
    }
    if (hdr->committee_hash != committee_hash) {
      return at(h, Errc::kCommitteeMismatch, "names a committee the genesis does not lead to");
    }
    if (hdr->log_size < prev_log) {
      return at(h, Errc::kBadValue,
                "the record log shrank from " + std::to_string(prev_log) + " to " +
                    std::to_string(hdr->log_size));
    }
    auto block = store.block(h);
    if (!block.ok()) return at(h, block.error().code, block.error().reason);
    if (block->block.digest() != hdr->payload_digest) {
      return at(h, Errc::kRecordMismatch,
                "the stored consensus block does not hash to the header's payload digest");
    }
    Bytes vote = consensus::commit_vote_message(genesis.chain_id, hdr->epoch, block->view, h,
                                                hdr->payload_digest);
    Status commit =
        crypto::verify_quorum(block->cert, committee.members, committee.threshold(), as_view(vote));
    if (!commit.ok()) {
      return at(h, commit.error().code, "commit certificate: " + commit.error().reason);
    }
    auto cert = store.certificate(h);
    if (cert.ok()) {
      if (cert->first != hdr->view) {
        return at(h, Errc::kBadValue,
                  "the header certificate is for view " + std::to_string(cert->first));
      }
      HeaderCertificate hc{cert->second};
      Status st = verify_header(*hdr, hc, committee);
      if (!st.ok()) return at(h, st.error().code, st.error().reason);
      ++s.certified;
    } else if (cert.error().code == Errc::kNotFound) {
      s.uncertified.push_back(h);
    } else {
      return at(h, cert.error().code, cert.error().reason);
    }
    prev = hdr->hash();
    prev_log = hdr->log_size;
    ++s.headers;
    if (progress && h % 10000 == 0) progress(h, total);
  }
  s.tip = prev;
  s.log_size = prev_log;
  return s;
}

}  // namespace attestnet::ledger
