#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/hash.h"
#include "core/result.h"
#include "crypto/ed25519.h"
#include "ledger/response.h"

namespace attestnet::cli {

// Each add_* registers a subcommand whose callback stores its exit code.
void add_sim_command(CLI::App& app);
void add_ledger_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_genesis_commands(CLI::App& app);
void add_evidence_command(CLI::App& app);
void add_attest_command(CLI::App& app);
void add_node_commands(CLI::App& app);  // node, devnet
void add_bench_command(CLI::App& app);
void add_registry_commands(CLI::App& app);  // join, leave, rotate-key
// Where an agent's evidence comes from (attest, join): a TPM, configfs-tsm, or a bundle file.
struct EvidenceSource {
  std::string tpm, eventlog, ima, bundle, platform;
  std::string pcrs = "sha256:0,4,7,8,9", ak = "rsa";
  bool tsm = false;
};
void add_evidence_options(CLI::App* c, EvidenceSource& ev);
// (platform, bundle) whose user data carries `binding`.
Result<std::pair<std::string, Bytes>> collect_evidence(const EvidenceSource& ev,
                                                       const Hash32& binding);
struct DevnetOptions {
  std::string dir = "devnet";
  uint32_t nodes = 4;
  std::string policy;
  bool ordering_only = false;
  bool pin_cpus = false;  // node i on CPU i mod (CPUs)
  uint16_t base_port = 7100, api_base_port = 8100;
  uint32_t batch_max = 200;
  uint64_t view_change_timeout_ms = 1000;
  std::optional<uint64_t> min_block_interval_ms;   // written when set (else the node's default)
  std::optional<uint64_t> busy_block_interval_ms;  // the same
  uint32_t committee_size = 0;                     // 0: every node sits
  uint64_t epoch_length = 0;                       // 0: no epochs
  std::string admission_policy;                    // policy a joining node's evidence must satisfy
  bool quiet = false;
};
int devnet_up(const DevnetOptions& o);  // exit code
// GET host:port/path as JSON (an error when it does not answer, or not with JSON).
Result<nlohmann::json> get_json(const std::string& host, uint16_t port, const std::string& path,
                                uint64_t timeout_ms = 2000);
// quiet: its one line goes to stderr (stdout stays clean for `bench --json`).
int devnet_down(const std::string& dir, bool quiet = false);
// The nodes of a devnet directory, from their configs: (name, API port), node0 first.
std::vector<std::pair<std::string, uint16_t>> devnet_nodes(const std::string& dir);
int exit_code();
// `genesis init` as a function (devnet up): keys in keys_dir/nodeI.key, peers on base_port+i.
int create_local_genesis(const std::string& chain_id, uint32_t nodes, const std::string& keys_dir,
                         const std::string& out, uint16_t base_port, uint32_t committee_size = 0,
                         uint64_t epoch_length = 0, const std::string& admission_policy = "",
                         bool quiet = false);  // quiet: "wrote ..." to stderr
// A genesis file, parsed and checked (ledger::Genesis::from_json).
Result<ledger::Genesis> load_genesis(const std::string& path);
// An identity key file (hex seed, mode 0600).
Status write_key(const std::string& path, const crypto::SecretKey& k);
// A whole file, or an Errc::kIo error naming it.
Result<Bytes> read_file(const std::string& path);
void set_exit_code(int code);

}  // namespace attestnet::cli
