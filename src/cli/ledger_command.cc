// `attestnet ledger verify-chain`: audit a data directory (read-only; safe while a node runs).
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "ledger/audit.h"

namespace attestnet::cli {
namespace {

struct LedgerArgs {
  std::string data;
  std::string genesis;
};

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

}  // namespace

void add_ledger_command(CLI::App& app) {
  CLI::App* ledger = app.add_subcommand("ledger", "Read and audit a node's ledger (read-only)");
  ledger->require_subcommand(1);
  auto args = std::make_shared<LedgerArgs>();
  CLI::App* vc = ledger->add_subcommand(
      "verify-chain", "Audit every block from genesis: hashes, certificates, committees");
  vc->add_option("--data", args->data, "The replica's data directory (RocksDB)")->required();
  vc->add_option("--genesis", args->genesis, "The genesis JSON file")->required();
  vc->callback([args] { set_exit_code(verify_chain(*args)); });
}

}  // namespace attestnet::cli
