// `attestnet keygen` and `attestnet genesis init`: identity keys and the genesis trust anchor.
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "ledger/response.h"
#include "policy/policy.h"

namespace attestnet::cli {
namespace {

struct GenesisArgs {
  std::string chain_id = "attestnet-devnet";
  uint32_t nodes = 4;
  std::string keys_dir;
  std::string out = "genesis.json";
  uint16_t base_port = 7100;
  uint32_t committee_size = 0;  // 0: every node sits
  uint64_t epoch_length = 0;
  uint64_t checkpoint_interval = 16;
  std::string key_out;
  std::string admission_policy;
  bool quiet = false;  // the summary line to stderr
};

}  // namespace

// A key file holds the 32-byte Ed25519 seed in hex, readable by its owner only.
Status write_key(const std::string& path, const crypto::SecretKey& k) {
  std::ofstream f(path);
  if (!f) return make_error(Errc::kIo, "cannot write " + path);
  f << to_hex(ByteView(k.seed().data(), k.seed().size())) << "\n";
  f.close();
  ::chmod(path.c_str(), 0600);
  return {};
}

namespace {

int keygen(const GenesisArgs& a) {
  if (std::filesystem::exists(a.key_out)) {
    std::fprintf(stderr, "%s exists: refusing to overwrite an identity key\n", a.key_out.c_str());
    return 1;
  }
  auto k = crypto::SecretKey::generate();
  Status st = write_key(a.key_out, k);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
    return 1;
  }
  std::printf("%s\n", to_hex(ByteView(k.public_key().data(), 32)).c_str());
  return 0;
}

int genesis_init(const GenesisArgs& a) {
  uint32_t seats = a.committee_size ? a.committee_size : a.nodes;
  if (seats < 4 || (seats - 1) % 3 != 0 || seats > a.nodes) {
    std::fprintf(stderr,
                 "the committee (--committee-size, default --nodes) must be 3f+1 with f >= 1 "
                 "(4, 7, 10, ...) and at most --nodes; got %u seats for %u nodes\n",
                 seats, a.nodes);
    return 2;
  }
  if (seats < a.nodes && a.epoch_length == 0) {
    std::fprintf(stderr, "registered nodes beyond the committee need epochs (--epoch-length)\n");
    return 2;
  }
  if (std::filesystem::exists(a.out)) {
    std::fprintf(stderr, "%s exists: refusing to overwrite a genesis file\n", a.out.c_str());
    return 1;
  }
  ledger::Genesis g;
  g.chain_id = a.chain_id;
  g.trust.epoch_length = a.epoch_length;
  g.trust.committee_size = seats;
  g.trust.max_churn = 1;
  g.checkpoint_interval = a.checkpoint_interval;
  if (!a.admission_policy.empty()) {
    auto text = read_file(a.admission_policy);
    if (!text.ok()) {
      std::fprintf(stderr, "%s\n", text.error().reason.c_str());
      return 1;
    }
    std::string_view sv(reinterpret_cast<const char*>(text->data()), text->size());
    auto pol = policy::parse_policy(sv);
    if (!pol.ok()) {
      std::fprintf(stderr, "%s: %s\n", a.admission_policy.c_str(), pol.error().reason.c_str());
      return 2;
    }
    g.admission_policy = nlohmann::json::parse(sv).dump();
  }
  if (a.epoch_length % a.checkpoint_interval != 0) {
    std::fprintf(stderr, "--epoch-length must be a multiple of --checkpoint-interval\n");
    return 2;
  }
  std::filesystem::create_directories(a.keys_dir);
  for (uint32_t i = 0; i < a.nodes; ++i) {
    std::string path = a.keys_dir + "/node" + std::to_string(i) + ".key";
    if (std::filesystem::exists(path)) {
      std::fprintf(stderr, "%s exists: refusing to overwrite an identity key\n", path.c_str());
      return 1;
    }
    auto k = crypto::SecretKey::generate();
    Status st = write_key(path, k);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.error().to_string().c_str());
      return 1;
    }
    g.members.push_back({"node" + std::to_string(i), k.public_key(),
                         "127.0.0.1:" + std::to_string(a.base_port + i)});
  }
  std::ofstream(a.out) << g.to_json().dump(2) << "\n";
  std::fprintf(a.quiet ? stderr : stdout,
               "wrote %s (chain %s, %u members, genesis hash %s) and %u keys in %s\n",
               a.out.c_str(), g.chain_id.c_str(), a.nodes, to_hex(g.hash()).c_str(), a.nodes,
               a.keys_dir.c_str());
  return 0;
}

}  // namespace

int create_local_genesis(const std::string& chain_id, uint32_t nodes, const std::string& keys_dir,
                         const std::string& out, uint16_t base_port, uint32_t committee_size,
                         uint64_t epoch_length, const std::string& admission_policy, bool quiet) {
  GenesisArgs a;
  a.quiet = quiet;
  a.admission_policy = admission_policy;
  a.committee_size = committee_size;
  a.epoch_length = epoch_length;
  a.chain_id = chain_id;
  a.nodes = nodes;
  a.keys_dir = keys_dir;
  a.out = out;
  a.base_port = base_port;
  return genesis_init(a);
}

void add_genesis_commands(CLI::App& app) {
  auto args = std::make_shared<GenesisArgs>();
  CLI::App* kg =
      app.add_subcommand("keygen", "Create an Ed25519 identity key; prints the public key");
  kg->add_option("--out", args->key_out, "Key file to create (mode 0600)")->required();
  kg->callback([args] { set_exit_code(keygen(*args)); });

  CLI::App* gen = app.add_subcommand("genesis", "The genesis file: a network's trust anchor");
  gen->require_subcommand(1);
  CLI::App* init = gen->add_subcommand("init", "Create keys for N local nodes and a genesis file");
  init->add_option("--chain-id", args->chain_id, "Chain id");
  init->add_option("--nodes", args->nodes, "Registered nodes");
  init->add_option("--committee-size", args->committee_size,
                   "Seats, 3f+1 (default: every node); the first nodes sit in epoch 0");
  init->add_option("--keys-dir", args->keys_dir, "Directory for the nodes' key files")->required();
  init->add_option("--out", args->out, "Genesis file to write");
  init->add_option("--base-port", args->base_port, "Peer port of node 0 (node i gets +i)");
  init->add_option("--epoch-length", args->epoch_length,
                   "Blocks per epoch (0: no epochs, the genesis committee forever)");
  init->add_option("--checkpoint-interval", args->checkpoint_interval, "Blocks per checkpoint");
  init->add_option("--admission-policy", args->admission_policy,
                   "Policy JSON a joining node's own evidence must satisfy (default: no node "
                   "joins after genesis)");
  init->callback([args] { set_exit_code(genesis_init(*args)); });
}

}  // namespace attestnet::cli
