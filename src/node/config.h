// node.toml: what one node needs to run (docs/operations.md has a commented example).
//
//   [node]
//   key      = "node0.key"      # Ed25519 identity key (hex seed, mode 0600; attestnet keygen)
//   cpus     = [0]              # optional: run every thread on these CPUs (default: any)
//   genesis  = "genesis.json"   # the network's trust anchor; this key must be a member
//   data_dir = "data/node0"     # RocksDB store (created on first start)
//   policy   = "policy.json"    # appraisal policy (every committee member must load the same)
//   snapshot_interval = 1024    # blocks between trust-state snapshots (what a restart folds)
//   [listen]
//   peer = "127.0.0.1:7100"     # TLS peer port (default: this member's endpoint in genesis)
//   api  = "127.0.0.1:8100"     # HTTP API
//   [consensus]                 # optional; defaults as below
//   batch_max = 200
//   batch_wait_ms = 0
//   view_change_timeout_ms = 1000
//   max_inflight_blocks = 4     # proposals in flight at the primary (0: only the window)
//   pipeline_min_batch = 0      # a 2nd block in flight needs this many waiting (0: batch_max)
//   min_block_interval_ms = 12  # behind a backlogged block, a partial batch waits this long
//   busy_block_interval_ms = 20 # ... growing to this as the host's CPUs go from 80% to 95% busy
//   prepare_lease = 32          # slots a synced lease covers (0: sync before every prepare)
//   [api]
//   max_body_bytes = 1048576
//   rate_limit_per_second = 500   # per client address; 0 = unlimited
//   rate_limit_burst = 1000
//   [peers]                       # optional endpoint overrides, by member name
//   node1 = "10.0.0.2:7100"
//
// Relative paths are relative to the config file's directory.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/codec.h"
#include "crypto/ed25519.h"

namespace attestnet::node {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};
Result<HostPort> parse_host_port(const std::string& s);

struct NodeConfig {
  std::string config_path;
  std::string key_file, genesis_file, data_dir, policy_file;
  std::optional<HostPort> peer_listen;  // default: the genesis endpoint
  HostPort api_listen{"127.0.0.1", 8100};
  uint32_t batch_max = 200;
  uint64_t batch_wait_ms = 0;
  uint64_t view_change_timeout_ms = 1000;
  uint32_t max_inflight_blocks = 4;
  uint32_t pipeline_min_batch = 0;  // 0: batch_max (pipeline only full batches)
  // Behind a backlogged block (its requests had waited for the one before), a batch that is not
  // full is proposed no sooner than this after it (consensus/replica.h; docs/operations.md).
  uint64_t min_block_interval_ms = 12;
  // The interval grows toward this as the host's CPUs go from 80% to 95% busy (node/host_load.h):
  // bigger blocks where a block's fixed cost is what fills them. At most min_block_interval_ms
  // (or 0): the interval stays fixed.
  uint64_t busy_block_interval_ms = 20;
  uint32_t prepare_lease = 32;  // consensus/replica.h (0: off)
  size_t max_body_bytes = 1 << 20;
  double rate_limit_per_second = 500;
  double rate_limit_burst = 1000;
  uint32_t workers = 1;     // threads that validate forwarded requests (and their signatures)
  uint32_t io_threads = 2;  // network and HTTP threads (one io_context)
  // Blocks between two snapshots of the trust state (one is also written at each epoch's end):
  // a restart folds at most this many blocks.
  uint64_t snapshot_interval = 1024;
  // The CPUs every thread of the node runs on (empty: any). For a host shared by several nodes
  // or other busy processes (docs/operations.md, "One machine", has the figures).
  std::vector<uint32_t> cpus;
  std::map<std::string, std::string> peer_overrides;
  // Test and benchmark only: skip appraisal (records carry verdict "none") to measure ordering.
  bool ordering_only = false;
};

// An identity key file (64 hex digits: the Ed25519 seed `attestnet keygen` writes).
Result<crypto::SecretKey> load_key(const std::string& path);

// Every missing or inconsistent setting is reported with the key's name and the file.
Result<NodeConfig> load_config(const std::string& path);

}  // namespace attestnet::node
