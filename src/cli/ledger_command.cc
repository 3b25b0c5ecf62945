// `attestnet ledger verify-chain`: audit a data directory (read-only; safe while a node runs).
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "api/client.h"
#include "cli/commands.h"
#include "ledger/audit.h"
#include "ledger/prover.h"

namespace attestnet::cli {

Result<ledger::Genesis> load_genesis(const std::string& path) {
  std::ifstream in(path);
  if (!in) return make_error(Errc::kIo, "cannot read the genesis file " + path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kBadValue, path + " is not JSON: " + e.what());
  }
  return ledger::Genesis::from_json(j);
}

namespace {

struct LedgerArgs {
  std::string data;
  std::string genesis;
  std::string request_id;
  std::string out;
  std::string file;
  std::string checkpoint;
  uint64_t height = 0;
  bool json = false;
};

int verify_chain(const LedgerArgs& a) {
  auto g = load_genesis(a.genesis);
  if (!g.ok()) {
    std::fprintf(stderr, "genesis: %s\n", g.error().to_string().c_str());
    return 2;
  }
  auto store = ledger::ReplicaStore::open_read_only(a.data);
  if (!store.ok()) {
    std::fprintf(stderr, "data directory: %s\n", store.error().to_string().c_str());
    return 2;
  }
  std::printf("auditing %llu blocks of chain \"%s\" from genesis %s\n",
              static_cast<unsigned long long>((*store)->highest_header()), g->chain_id.c_str(),
              to_hex(g->hash()).c_str());
  auto s = ledger::audit_chain(**store, *g, [](uint64_t h, uint64_t total) {
    std::fprintf(stderr, "  ... %llu/%llu\n", static_cast<unsigned long long>(h),
                 static_cast<unsigned long long>(total));
  });
  if (!s.ok()) {
    std::printf("BROKEN %s\n", s.error().to_string().c_str());
    return 1;
  }
  std::printf(
      "verified %llu headers: hash chain, committee, consensus commit certificates; "
      "%llu header certificates verify; log of %llu records; tip %s\n",
      static_cast<unsigned long long>(s->headers), static_cast<unsigned long long>(s->certified),
      static_cast<unsigned long long>(s->log_size), to_hex(s->tip).c_str());
  if (s->handovers)
    std::printf("%llu epoch hand-overs: each next committee is the one its header names\n",
                static_cast<unsigned long long>(s->handovers));
  if (!s->uncertified.empty()) {
    std::ostringstream os;
    for (size_t i = 0; i < s->uncertified.size() && i < 20; ++i) os << " " << s->uncertified[i];
    std::printf(
        "%zu header(s) have no certificate in this store (the replica caught up by state transfer, "
        "or stopped before the votes arrived):%s%s\n",
        s->uncertified.size(), os.str().c_str(), s->uncertified.size() > 20 ? " ..." : "");
    return 1;
  }
  return 0;
}

int show(const LedgerArgs& a) {
  auto store = ledger::ReplicaStore::open_read_only(a.data);
  if (!store.ok()) {
    std::fprintf(stderr, "data directory: %s\n", store.error().to_string().c_str());
    return 2;
  }
  uint64_t h = a.height == 0 ? (*store)->highest_header() : a.height;
  auto hf = (*store)->header(h);
  if (!hf.ok()) {
    std::fprintf(stderr, "%s\n", hf.error().to_string().c_str());
    return 1;
  }
  auto hdr = ledger::BlockHeader::decode(as_view(hf->first));
  if (!hdr.ok()) {
    std::fprintf(stderr, "height %llu: %s\n", static_cast<unsigned long long>(h),
                 hdr.error().to_string().c_str());
    return 1;
  }
  std::printf(
      "height %llu  hash %s\n  chain %s epoch %llu view %llu time %llu proposer %u\n"
      "  prev %s\n  log size %llu root %s\n  certificate: %s\n",
      static_cast<unsigned long long>(h), to_hex(hdr->hash()).c_str(), hdr->chain_id.c_str(),
      static_cast<unsigned long long>(hdr->epoch), static_cast<unsigned long long>(hdr->view),
      static_cast<unsigned long long>(hdr->block_time), hdr->proposer,
      to_hex(hdr->prev_hash).c_str(), static_cast<unsigned long long>(hdr->log_size),
      to_hex(hdr->log_root).c_str(), (*store)->certificate(h).ok() ? "stored" : "none");
  auto block = (*store)->block(h);
  if (block.ok()) {
    for (const auto& q : block->block.requests) {
      auto rec = (*store)->record_by_request(q.id());
      if (!rec.ok()) continue;
      auto r = ledger::AttestationRecord::decode(as_view(rec->second));
      if (!r.ok()) continue;
      std::printf("  record %llu  request %s  vm %s  platform %s  verdict %s\n",
                  static_cast<unsigned long long>(rec->first), to_hex(r->request_id).c_str(),
                  r->vm_id.c_str(), r->platform.c_str(), ledger::verdict_name(r->verdict));
    }
  }
  return 0;
}

// Parses REQUEST_ID and opens the data directory read-only; non-zero exit code on failure.
int open_for_request(const LedgerArgs& a, Hash32* rid, std::unique_ptr<ledger::ReplicaStore>* out) {
  auto id = hash32_from_hex(a.request_id);
  if (!id) {
    std::fprintf(stderr, "REQUEST_ID must be 64 hex digits\n");
    return 2;
  }
  *rid = *id;
  auto store = ledger::ReplicaStore::open_read_only(a.data);
  if (!store.ok()) {
    std::fprintf(stderr, "data directory: %s\n", store.error().to_string().c_str());
    return 2;
  }
  *out = std::move(store).value();
  return 0;
}

int get(const LedgerArgs& a) {
  Hash32 rid;
  std::unique_ptr<ledger::ReplicaStore> store;
  if (int rc = open_for_request(a, &rid, &store); rc != 0) return rc;
  auto found = store->record_by_request(rid);
  if (!found.ok()) {
    std::fprintf(stderr, "%s\n", found.error().to_string().c_str());
    return 1;
  }
  auto r = ledger::AttestationRecord::decode(as_view(found->second));
  if (!r.ok()) {
    std::fprintf(stderr, "record %llu does not decode: %s\n",
                 static_cast<unsigned long long>(found->first), r.error().to_string().c_str());
    return 1;
  }
  std::printf(
      "record %llu\n  request %s\n  vm %s  platform %s  verdict %s  policy %s v%u  time %llu\n",
      static_cast<unsigned long long>(found->first), to_hex(r->request_id).c_str(),
      r->vm_id.c_str(), r->platform.c_str(), ledger::verdict_name(r->verdict), r->policy_id.c_str(),
      r->policy_version, static_cast<unsigned long long>(r->timestamp));
  for (const auto& m : r->measurements) {
    std::printf("  measurement %s = %s\n", m.name.c_str(), to_hex(as_view(m.digest)).c_str());
  }
  for (const auto& c : r->claims) std::printf("  claim %s = %s\n", c.name.c_str(), c.value.c_str());
  for (const auto& why : r->reasons) std::printf("  reason: %s\n", why.c_str());
  auto history = store->vm_history(r->vm_id);
  if (history.ok()) {
    std::printf("  this VM has %zu record(s); the latest is record %llu\n", history->size(),
                static_cast<unsigned long long>(history->empty() ? 0 : history->back()));
  }
  return 0;
}

int proof(const LedgerArgs& a) {
  auto g = load_genesis(a.genesis);
  if (!g.ok()) {
    std::fprintf(stderr, "genesis: %s\n", g.error().to_string().c_str());
    return 2;
  }
  Hash32 rid;
  std::unique_ptr<ledger::ReplicaStore> store;
  if (int rc = open_for_request(a, &rid, &store); rc != 0) return rc;
  auto resp = ledger::build_response(*store, *g, rid);
  if (!resp.ok()) {
    std::fprintf(stderr, "%s\n", resp.error().to_string().c_str());
    return 1;
  }
  size_t n = g->seats();
  std::string text = resp->to_json(n).dump(2) + "\n";
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream(a.out) << text;
    std::printf(
        "wrote %s: record %llu proven into header %llu (%zu proof hashes, %zu signatures)\n",
        a.out.c_str(), static_cast<unsigned long long>(resp->leaf_index),
        static_cast<unsigned long long>(resp->header.height), resp->inclusion_proof.size(),
        resp->certificate.sigs.sigs.size());
  }
  return 0;
}

int verify(const LedgerArgs& a) {
  auto g = load_genesis(a.genesis);
  if (!g.ok()) {
    std::fprintf(stderr, "genesis: %s\n", g.error().to_string().c_str());
    return 2;
  }
  std::ifstream in(a.file);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", a.file.c_str());
    return 2;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "%s is not JSON: %s\n", a.file.c_str(), e.what());
    return 2;
  }
  std::optional<ledger::Committee> pinned;
  if (!a.checkpoint.empty()) {
    std::ifstream cin(a.checkpoint);
    nlohmann::json cj;
    try {
      if (!cin) throw std::runtime_error("cannot read the file");
      cj = nlohmann::json::parse(cin);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "checkpoint %s: %s\n", a.checkpoint.c_str(), e.what());
      return 2;
    }
    auto c = ledger::checkpoint_from_json(cj, g->chain_id);
    if (!c.ok()) {
      std::fprintf(stderr, "checkpoint %s: %s\n", a.checkpoint.c_str(),
                   c.error().to_string().c_str());
      return 2;
    }
    pinned = std::move(c).value();
  }
  auto resp = ledger::AttestationResponse::from_json(j, g->seats());
  Result<ledger::AttestationRecord> rec =
      resp.ok() ? ledger::verify_response(*resp, *g, {}, pinned ? &*pinned : nullptr)
                : Result<ledger::AttestationRecord>(resp.error());
  if (a.json) {
    nlohmann::json o;
    o["valid"] = rec.ok();
    if (rec.ok()) {
      o["request_id"] = to_hex(rec->request_id);
      o["vm_id"] = rec->vm_id;
      o["platform"] = rec->platform;
      o["handovers"] = resp->handovers.size();
      o["verdict"] = ledger::verdict_name(rec->verdict);
      o["height"] = resp->header.height;
      o["epoch"] = resp->header.epoch;
      o["block_time"] = resp->header.block_time;
      o["trusted_from_epoch"] = pinned ? pinned->epoch : 0;
    } else {
      o["error"] = errc_name(rec.error().code);
      o["reason"] = rec.error().reason;
    }
    std::printf("%s\n", o.dump(2).c_str());
    return rec.ok() ? 0 : 1;
  }
  if (!rec.ok()) {
    std::printf("INVALID %s\n", rec.error().to_string().c_str());
    return 1;
  }
  std::printf("VALID: vm %s (%s) verdict %s, policy %s v%u\n", rec->vm_id.c_str(),
              rec->platform.c_str(), ledger::verdict_name(rec->verdict), rec->policy_id.c_str(),
              rec->policy_version);
  for (const auto& m : rec->measurements) {
    std::printf("  measurement %s = %s\n", m.name.c_str(), to_hex(as_view(m.digest)).c_str());
  }
  for (const auto& why : rec->reasons) std::printf("  reason: %s\n", why.c_str());
  size_t committee =
      resp->handovers.empty() ? g->seats() : resp->handovers.back().next.members.size();
  std::printf(
      "  in block %llu (epoch %llu, time %llu) of chain %s, certified by %zu of %zu "
      "members\n",
      static_cast<unsigned long long>(resp->header.height),
      static_cast<unsigned long long>(resp->header.epoch),
      static_cast<unsigned long long>(resp->header.block_time), g->chain_id.c_str(),
      resp->certificate.sigs.sigs.size(), committee);
  if (resp->header.epoch > 0) {
    uint64_t from = pinned ? pinned->epoch : 0;
    std::printf("  committee of epoch %llu followed through %llu hand-over(s) from %s\n",
                static_cast<unsigned long long>(resp->header.epoch),
                static_cast<unsigned long long>(resp->header.epoch - from),
                pinned ? ("the checkpoint at epoch " + std::to_string(from)).c_str() : "genesis");
  }
  return 0;
}

// `attestnet checkpoint`: fetch a committee from a node with its hand-overs, check them from
// genesis, and write the checkpoint a relying party then pins (attestnet verify --checkpoint).
int fetch_checkpoint(const LedgerArgs& a, const std::string& node, std::optional<uint64_t> epoch) {
  auto g = load_genesis(a.genesis);
  if (!g.ok()) {
    std::fprintf(stderr, "genesis: %s\n", g.error().to_string().c_str());
    return 2;
  }
  auto url = api::parse_url(node);
  if (!url.ok()) {
    std::fprintf(stderr, "attestnet checkpoint: %s\n", url.error().reason.c_str());
    return 2;
  }
  std::string target = "/v1/checkpoint";
  if (epoch) target += "?epoch=" + std::to_string(*epoch);
  auto r = api::http_call(*url, "GET", target, "", "application/json", 30000);
  if (!r.ok() || r->status != 200) {
    std::fprintf(stderr, "attestnet checkpoint: %s%s: %s\n", node.c_str(), target.c_str(),
                 r.ok() ? r->body.c_str() : r.error().reason.c_str());
    return 1;
  }
  nlohmann::json j = nlohmann::json::parse(r->body, nullptr, false);
  auto c = ledger::checkpoint_from_proof(j, *g);
  if (!c.ok()) {
    std::fprintf(stderr,
                 "attestnet checkpoint: the node's checkpoint does not verify from %s: %s\n",
                 a.genesis.c_str(), c.error().to_string().c_str());
    return 1;
  }
  std::ofstream f(a.out);
  f << ledger::checkpoint_to_json(g->chain_id, *c).dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "attestnet checkpoint: cannot write %s\n", a.out.c_str());
    return 1;
  }
  std::printf(
      "checkpoint: the committee of epoch %llu (%zu members, %s), proven from genesis through "
      "%llu hand-overs; written to %s\n",
      static_cast<unsigned long long>(c->epoch), c->members.size(),
      to_hex(c->hash()).substr(0, 16).c_str(), static_cast<unsigned long long>(c->epoch),
      a.out.c_str());
  return 0;
}

}  // namespace

void add_verify_command(CLI::App& app) {
  auto args = std::make_shared<LedgerArgs>();
  CLI::App* v =
      app.add_subcommand("verify", "Check an attestation response offline against a genesis file");
  v->add_option("response", args->file, "The response JSON file")->required();
  v->add_option("--genesis", args->genesis, "The genesis JSON file")->required();
  v->add_option("--checkpoint", args->checkpoint,
                "A committee you trust (attestnet-checkpoint/1 JSON): hand-overs are followed "
                "from it instead of from genesis");
  v->add_flag("--json", args->json, "Machine-readable output");
  v->callback([args] { set_exit_code(verify(*args)); });

  auto node = std::make_shared<std::string>();
  auto epoch = std::make_shared<std::optional<uint64_t>>();
  CLI::App* cp = app.add_subcommand(
      "checkpoint",
      "Fetch a committee from a node, verify its hand-overs from genesis, write a checkpoint to "
      "pin (attestnet verify --checkpoint)");
  cp->add_option("--node", *node, "a node's API URL")->default_val("http://127.0.0.1:8100");
  cp->add_option("--genesis", args->genesis, "The genesis JSON file")->required();
  cp->add_option("--epoch", *epoch, "which epoch's committee (default: the node's newest)");
  cp->add_option("--out", args->out, "checkpoint file to write")->required();
  cp->callback([args, node, epoch] { set_exit_code(fetch_checkpoint(*args, *node, *epoch)); });
}

void add_ledger_command(CLI::App& app) {
  CLI::App* ledger = app.add_subcommand("ledger", "Read and audit a node's ledger (read-only)");
  ledger->require_subcommand(1);
  auto args = std::make_shared<LedgerArgs>();
  CLI::App* vc = ledger->add_subcommand(
      "verify-chain", "Audit every block from genesis: hashes, certificates, committees");
  vc->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  vc->add_option("--genesis", args->genesis, "The genesis JSON file")->required();
  vc->callback([args] { set_exit_code(verify_chain(*args)); });
  CLI::App* sh =
      ledger->add_subcommand("show", "Print a header and its records (default: the tip)");
  sh->add_option("height", args->height, "Block height");
  sh->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  sh->callback([args] { set_exit_code(show(*args)); });
  CLI::App* tl = ledger->add_subcommand("tail", "Print the newest header and its records");
  tl->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  tl->callback([args] {
    args->height = 0;
    set_exit_code(show(*args));
  });
  CLI::App* gt =
      ledger->add_subcommand("get", "Print the record of a request and its VM's history");
  gt->add_option("request_id", args->request_id, "Request id (64 hex digits)")->required();
  gt->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  gt->callback([args] { set_exit_code(get(*args)); });
  CLI::App* pr = ledger->add_subcommand(
      "proof", "Build the attestation response for a request: record, certified header, proof");
  pr->add_option("request_id", args->request_id, "Request id (64 hex digits)")->required();
  pr->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  pr->add_option("--genesis", args->genesis, "The genesis JSON file")->required();
  pr->add_option("--out", args->out, "Write the response JSON here");
  pr->callback([args] { set_exit_code(proof(*args)); });
}

}  // namespace attestnet::cli
