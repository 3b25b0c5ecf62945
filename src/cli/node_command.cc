// `attestnet node --config node.toml` (the daemon) and `attestnet devnet up|down|status`
// (N local node processes in the background, with their configs, keys, logs and a genesis).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "api/client.h"
#include "cli/commands.h"
#include "node/node.h"

namespace attestnet::cli {
namespace {

namespace fs = std::filesystem;

struct NodeArgs : DevnetOptions {
  std::string config;
};

int run_node(const NodeArgs& a) {
  // Block the stop signals before any thread starts, then wait for one of them.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);  // a peer or client that hangs up is an error code, not death
  auto cfg = node::load_config(a.config);
  if (!cfg.ok()) {
    std::fprintf(stderr, "attestnet node: %s\n", cfg.error().reason.c_str());
    return 2;
  }
  if (Status st = node::pin_to_cpus(cfg->cpus); !st.ok()) {
    std::fprintf(stderr, "attestnet node: %s: %s\n", a.config.c_str(), st.error().reason.c_str());
    return 2;
  }
  auto n = node::Node::open(*cfg);
  if (!n.ok()) {
    std::fprintf(stderr, "attestnet node: %s\n", n.error().to_string().c_str());
    return 1;
  }
  Status st = (*n)->start();
  if (!st.ok()) {
    std::fprintf(stderr, "attestnet node: %s\n", st.error().to_string().c_str());
    return 1;
  }
  auto s = (*n)->status();
  std::string who = (*n)->self() == node::Node::kUnregistered
                        ? std::string("(not registered yet)")
                        : "(registry index " + std::to_string((*n)->self()) + ")";
  std::printf("attestnet node %s %s, chain %s, at height %llu: peers on :%u, API on http://%s:%u\n",
              s["node"].get<std::string>().c_str(), who.c_str(), (*n)->genesis().chain_id.c_str(),
              static_cast<unsigned long long>(s["height"].get<uint64_t>()), (*n)->peer_port(),
              cfg->api_listen.host.c_str(), (*n)->api_port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("attestnet node: %s: stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*n)->stop();
  std::printf("attestnet node: stopped cleanly\n");
  return 0;
}

std::string node_name(uint32_t i) {
  return "node" + std::to_string(i);
}

}  // namespace

Result<nlohmann::json> get_json(const std::string& host, uint16_t port, const std::string& path,
                                uint64_t timeout_ms) {
  api::Url u{host, port, ""};
  ATN_TRY(auto r, api::http_call(u, "GET", path, "", "application/json", timeout_ms));
  try {
    return nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    return make_error(Errc::kBadValue, path + ": not JSON");
  }
}

namespace {

pid_t spawn_node(const std::string& dir, uint32_t i) {
  std::string exe = fs::read_symlink("/proc/self/exe");
  std::string cfg = dir + "/" + node_name(i) + ".toml";
  std::string log = dir + "/" + node_name(i) + ".log";
  pid_t pid = fork();
  if (pid == 0) {
    setsid();
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    execl(exe.c_str(), exe.c_str(), "node", "--config", cfg.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  std::ofstream(dir + "/" + node_name(i) + ".pid") << pid << "\n";
  return pid;
}

// nodeI.toml of a devnet (nodeI's key in keys/, its store in data/, ports base + I).
void write_node_config(const DevnetOptions& a, uint32_t i) {
  std::ofstream f(a.dir + "/" + node_name(i) + ".toml");
  f << "# attestnet node config written by `attestnet devnet` (docs/operations.md)\n"
    << "[node]\nkey = \"keys/" << node_name(i) << ".key\"\ngenesis = \"genesis.json\"\n"
    << "data_dir = \"data/" << node_name(i) << "\"\n";
  if (a.ordering_only)
    f << "ordering_only = true\n";
  else
    f << "policy = \"policy.json\"\n";
  // Every node of a devnet shares this host: one io thread each. On the 2-core bench VM with 4
  // nodes, a second one cost ~10% more CPU per request and twice the context switches
  // (scripts/bench-ab, docs/operations.md).
  f << "io_threads = 1\n";
  if (a.pin_cpus) {
    // Node i on CPU i mod n: with more nodes than CPUs on one host, each node's threads hand
    // work to each other on one CPU instead of waking threads across CPUs.
    unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
    f << "cpus = [" << i % ncpu << "]\n";
  }
  f << "\n[listen]\npeer = \"127.0.0.1:" << a.base_port + i
    << "\"\napi = \"127.0.0.1:" << a.api_base_port + i
    << "\"\n\n[consensus]\nbatch_max = " << a.batch_max
    << "\nview_change_timeout_ms = " << a.view_change_timeout_ms << "\n";
  if (a.min_block_interval_ms) f << "min_block_interval_ms = " << *a.min_block_interval_ms << "\n";
  if (a.busy_block_interval_ms)
    f << "busy_block_interval_ms = " << *a.busy_block_interval_ms << "\n";
  f << "\n[api]\nrate_limit_per_second = 0\n";
}

}  // namespace

// Ports of a devnet from its configs: (name, api port) per node.
std::vector<std::pair<std::string, uint16_t>> devnet_nodes(const std::string& dir) {
  std::vector<std::pair<std::string, uint16_t>> v;
  for (uint32_t i = 0;; ++i) {
    std::string cfg = dir + "/" + node_name(i) + ".toml";
    if (!fs::exists(cfg)) break;
    auto c = node::load_config(cfg);
    v.emplace_back(node_name(i), c.ok() ? c->api_listen.port : 0);
  }
  return v;
}

int devnet_up(const DevnetOptions& a) {
  fs::create_directories(a.dir);
  std::string genesis = a.dir + "/genesis.json";
  bool fresh = !fs::exists(genesis);
  if (fresh) {
    if (a.policy.empty() && !a.ordering_only) {
      std::fprintf(stderr,
                   "devnet up: give --policy FILE (the appraisal policy every node "
                   "loads), or --ordering-only\n");
      return 2;
    }
    int rc =
        create_local_genesis("attestnet-devnet", a.nodes, a.dir + "/keys", genesis, a.base_port,
                             a.committee_size, a.epoch_length, a.admission_policy, a.quiet);
    if (rc != 0) return rc;
    if (!a.policy.empty())
      fs::copy_file(a.policy, a.dir + "/policy.json", fs::copy_options::overwrite_existing);
    for (uint32_t i = 0; i < a.nodes; ++i) write_node_config(a, i);
  }
  auto nodes = devnet_nodes(a.dir);
  if (nodes.empty()) {
    std::fprintf(stderr, "devnet up: %s has a genesis but no node configs\n", a.dir.c_str());
    return 1;
  }
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    std::ifstream pf(a.dir + "/" + node_name(i) + ".pid");
    pid_t old = 0;
    if (pf >> old && old > 0 && kill(old, 0) == 0) continue;  // already running
    spawn_node(a.dir, i);
  }
  // What answers on a node's port must be that node of this devnet: a process of another
  // network on the port (our node then exits: address in use) used to pass for it, and a
  // bench drove the wrong devnet.
  auto ours = load_genesis(genesis);
  if (!ours.ok()) {
    std::fprintf(stderr, "devnet up: %s: %s\n", genesis.c_str(), ours.error().reason.c_str());
    return 1;
  }
  const std::string our_hash = to_hex(ours->hash());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    const auto& [name, port] = nodes[i];
    std::string theirs;
    auto answered = [&, port = port] {
      auto st = get_json("127.0.0.1", port, "/v1/status", 500);
      if (!st.ok()) return false;
      theirs = st->value("genesis_hash", std::string());
      return true;
    };
    while (!answered()) {
      // A node we started that already exited: say how, instead of waiting for the deadline.
      pid_t pid = 0;
      std::ifstream(a.dir + "/" + name + ".pid") >> pid;
      int wst = 0;
      if (pid > 0 && waitpid(pid, &wst, WNOHANG) == pid) {
        std::fprintf(stderr, "devnet up: %s exited (%s %d); see %s/%s.log\n", name.c_str(),
                     WIFSIGNALED(wst) ? "signal" : "status",
                     WIFSIGNALED(wst) ? WTERMSIG(wst) : WEXITSTATUS(wst), a.dir.c_str(),
                     name.c_str());
        return 1;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        std::fprintf(stderr,
                     "devnet up: %s did not answer on 127.0.0.1:%u within 30 s; see %s/%s.log\n",
                     name.c_str(), port, a.dir.c_str(), name.c_str());
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (theirs != our_hash) {
      std::fprintf(stderr,
                   "devnet up: 127.0.0.1:%u answers for another network (genesis %s, this "
                   "devnet's is %s): is another devnet running on these ports? Stop it, or "
                   "choose --base-port and --api-base-port\n",
                   port, theirs.c_str(), our_hash.c_str());
      devnet_down(a.dir, true);
      return 1;
    }
  }
  if (!a.quiet)
    std::printf("devnet of %zu nodes up in %s (genesis %s); APIs on 127.0.0.1:%u..%u\n",
                nodes.size(), a.dir.c_str(), genesis.c_str(), nodes.front().second,
                nodes.back().second);
  return 0;
}

// A node outside the genesis: its key and config (the next nodeK), started; it follows the
// ledger once `attestnet join` registers it.
int devnet_add_node(const DevnetOptions& in) {
  auto nodes = devnet_nodes(in.dir);
  if (nodes.empty()) {
    std::fprintf(stderr, "devnet add-node: no devnet in %s (devnet up first)\n", in.dir.c_str());
    return 1;
  }
  auto c0 = node::load_config(in.dir + "/node0.toml");
  if (!c0.ok() || !c0->peer_listen) {
    std::fprintf(stderr, "devnet add-node: %s/node0.toml: %s\n", in.dir.c_str(),
                 c0.ok() ? "no [listen] peer" : c0.error().reason.c_str());
    return 1;
  }
  DevnetOptions a = in;
  a.base_port = c0->peer_listen->port;
  a.api_base_port = c0->api_listen.port;
  a.ordering_only = c0->ordering_only;
  a.pin_cpus = !c0->cpus.empty();
  a.batch_max = c0->batch_max;
  a.view_change_timeout_ms = c0->view_change_timeout_ms;
  a.min_block_interval_ms = c0->min_block_interval_ms;
  a.busy_block_interval_ms = c0->busy_block_interval_ms;
  uint32_t k = static_cast<uint32_t>(nodes.size());
  std::string key = a.dir + "/keys/" + node_name(k) + ".key";
  if (fs::exists(key)) {
    std::fprintf(stderr, "devnet add-node: %s exists: refusing to overwrite an identity key\n",
                 key.c_str());
    return 1;
  }
  crypto::init();
  auto sk = crypto::SecretKey::generate();
  if (Status st = write_key(key, sk); !st.ok()) {
    std::fprintf(stderr, "devnet add-node: %s\n", st.error().reason.c_str());
    return 1;
  }
  write_node_config(a, k);
  a.quiet = true;
  if (int rc = devnet_up(a); rc != 0) return rc;
  std::printf(
      "%s started (key %s, peer 127.0.0.1:%u, API http://127.0.0.1:%u); not registered: "
      "attestnet join --config %s/%s.toml --node http://127.0.0.1:%u --tpm ...\n",
      node_name(k).c_str(), to_hex(ByteView(sk.public_key().data(), 32)).substr(0, 16).c_str(),
      a.base_port + k, a.api_base_port + k, a.dir.c_str(), node_name(k).c_str(), a.api_base_port);
  return 0;
}

int devnet_down(const std::string& dir, bool quiet) {
  DevnetOptions a;
  a.dir = dir;
  auto nodes = devnet_nodes(a.dir);
  int stopped = 0;
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    std::string pidfile = a.dir + "/" + node_name(i) + ".pid";
    std::ifstream pf(pidfile);
    pid_t pid = 0;
    if (!(pf >> pid) || pid <= 0) continue;
    if (kill(pid, SIGTERM) == 0) {
      for (int t = 0; t < 100 && kill(pid, 0) == 0; ++t) {
        waitpid(pid, nullptr, WNOHANG);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (kill(pid, 0) == 0) {
        std::fprintf(stderr, "%s did not stop within 10 s: SIGKILL\n", nodes[i].first.c_str());
        kill(pid, SIGKILL);
      }
      ++stopped;
    }
    fs::remove(pidfile);
  }
  std::fprintf(quiet ? stderr : stdout, "devnet in %s: %d node(s) stopped\n", a.dir.c_str(),
               stopped);
  return 0;
}

namespace {

int devnet_status(const NodeArgs& a) {
  auto nodes = devnet_nodes(a.dir);
  if (nodes.empty()) {
    std::fprintf(stderr, "no devnet in %s\n", a.dir.c_str());
    return 1;
  }
  std::printf("%-8s %-6s %-8s %-9s %-5s %-8s %-8s %s\n", "node", "api", "height", "certified",
              "view", "primary", "pending", "peers");
  int down = 0;
  for (const auto& [name, port] : nodes) {
    auto s = get_json("127.0.0.1", port, "/v1/status");
    if (!s.ok()) {
      std::printf("%-8s %-6u DOWN (%s)\n", name.c_str(), port, s.error().reason.c_str());
      ++down;
      continue;
    }
    std::string peers;
    for (const auto& p : (*s)["peers_connected"])
      peers += (peers.empty() ? "" : ",") + p.get<std::string>();
    std::printf("%-8s %-6u %-8llu %-9llu %-5llu %-8s %-8zu %s%s\n", name.c_str(), port,
                static_cast<unsigned long long>((*s)["height"].get<uint64_t>()),
                static_cast<unsigned long long>((*s)["certified_height"].get<uint64_t>()),
                static_cast<unsigned long long>((*s)["view"].get<uint64_t>()),
                (*s)["primary"].get<std::string>().c_str(), (*s)["pending_requests"].get<size_t>(),
                peers.c_str(), (*s)["in_view_change"].get<bool>() ? " (view change)" : "");
  }
  for (const auto& [name, port] : nodes) {
    auto s = get_json("127.0.0.1", port, "/v1/status");
    if (!s.ok()) continue;
    std::printf("committee (epoch %llu, as %s sees it): ",
                static_cast<unsigned long long>((*s)["epoch"].get<uint64_t>()), name.c_str());
    bool first = true;
    for (const auto& m : (*s)["committee"]) {
      std::printf("%s%s", first ? "" : ", ", m.get<std::string>().c_str());
      first = false;
    }
    std::printf("\n");
    break;
  }
  return down ? 1 : 0;
}

// `attestnet nodes --node URL`: the registry as one node computed it (GET /v1/nodes).
int show_nodes(const std::string& url, bool history) {
  auto u = api::parse_url(url);
  if (!u.ok()) {
    std::fprintf(stderr, "--node: %s\n", u.error().reason.c_str());
    return 2;
  }
  auto j = get_json(u->host, u->port, "/v1/nodes");
  if (!j.ok()) {
    std::fprintf(stderr, "%s: %s\n", url.c_str(), j.error().reason.c_str());
    return 1;
  }
  std::printf("epoch %llu\n", static_cast<unsigned long long>((*j)["epoch"].get<uint64_t>()));
  std::printf("%-10s %-5s %-13s %-8s %-10s %-9s %s\n", "node", "seat", "reputation", "slashes",
              "excluded", "terms", "last terms");
  for (const auto& n : (*j)["nodes"]) {
    std::string last;
    const auto& terms = n["terms"];
    for (size_t i = terms.size() > 5 ? terms.size() - 5 : 0; i < terms.size(); ++i)
      last += (last.empty() ? "" : ",") + std::to_string(terms[i].get<uint64_t>());
    uint64_t ex = n["excluded_until_epoch"].get<uint64_t>();
    std::printf("%-10s %-5s %8.3f      %-8u %-10s %-9zu %s%s\n",
                n["name"].get<std::string>().c_str(), n["committee"].get<bool>() ? "yes" : "",
                n["reputation_ppm"].get<uint64_t>() / 1e6, n["slashes"].get<unsigned>(),
                ex > (*j)["epoch"].get<uint64_t>() ? ("< " + std::to_string(ex)).c_str() : "",
                terms.size(), last.c_str(), n["active"].get<bool>() ? "" : " (left)");
    if (history) {
      std::string h;
      for (const auto& x : n["history"])
        h += " " + std::to_string(x["epoch"].get<uint64_t>()) + ":" +
             std::to_string(x["score_ppm"].get<uint64_t>() / 1000) + "k";
      std::printf("           history%s\n", h.c_str());
    }
  }
  return 0;
}

}  // namespace

void add_node_commands(CLI::App& app) {
  auto args = std::make_shared<NodeArgs>();
  auto* n = app.add_subcommand("node", "Run one node (SIGTERM stops it cleanly)");
  n->add_option("--config", args->config, "node.toml (docs/operations.md)")->required();
  n->callback([args] { set_exit_code(run_node(*args)); });

  auto nodes_url = std::make_shared<std::string>("http://127.0.0.1:8100");
  auto nodes_history = std::make_shared<bool>(false);
  auto* ns = app.add_subcommand(
      "nodes", "The registry as a node computed it: seats, reputation, terms, exclusions");
  ns->add_option("--node", *nodes_url, "a node's API URL")->default_val("http://127.0.0.1:8100");
  ns->add_flag("--history", *nodes_history, "also each node's score per epoch (last 64)");
  ns->callback(
      [nodes_url, nodes_history] { set_exit_code(show_nodes(*nodes_url, *nodes_history)); });

  auto* d = app.add_subcommand("devnet", "A local network of node processes on 127.0.0.1");
  d->require_subcommand(1);
  auto* up = d->add_subcommand("up", "Create (first time) and start a devnet in the background");
  up->add_option("--nodes", args->nodes, "registered nodes")->default_val(4);
  up->add_option("--committee-size", args->committee_size,
                 "seats, 3f+1 (default: every node sits)");
  up->add_option("--epoch-length", args->epoch_length,
                 "blocks per epoch, a multiple of 16 (default 0: no epochs)");
  up->add_option("--dir", args->dir, "devnet directory")->default_val("devnet");
  up->add_option("--policy", args->policy, "appraisal policy JSON every node loads");
  up->add_flag("--ordering-only", args->ordering_only,
               "no appraisal (consensus benchmarks): records carry verdict none");
  up->add_flag("--pin-cpus", args->pin_cpus,
               "run node i on CPU i mod (CPUs) ([node] cpus): for more nodes than CPUs");
  up->add_option("--base-port", args->base_port, "peer port of node0 (nodeI: +I)")
      ->default_val(7100);
  up->add_option("--api-base-port", args->api_base_port, "API port of node0 (nodeI: +I)")
      ->default_val(8100);
  up->add_option("--batch-max", args->batch_max, "requests per block")->default_val(200);
  up->add_option("--view-change-timeout-ms", args->view_change_timeout_ms,
                 "base view-change timeout")
      ->default_val(1000);
  up->add_option("--min-block-interval-ms", args->min_block_interval_ms,
                 "behind a backlogged block, a partial batch waits this long after it "
                 "(default: the node's, 12; docs/operations.md)");
  up->add_option("--busy-block-interval-ms", args->busy_block_interval_ms,
                 "... growing to this as the host's CPUs go from 80% to 95% busy (default: the "
                 "node's, 20; at most --min-block-interval-ms: fixed)");
  up->callback([args] { set_exit_code(devnet_up(*args)); });
  up->add_option("--admission-policy", args->admission_policy,
                 "policy JSON a joining node's own evidence must satisfy (genesis)");
  auto* add = d->add_subcommand(
      "add-node", "Create and start one more node outside the genesis (then: attestnet join)");
  add->add_option("--dir", args->dir, "devnet directory")->default_val("devnet");
  add->callback([args] { set_exit_code(devnet_add_node(*args)); });
  auto* down = d->add_subcommand("down", "Stop the devnet's nodes (SIGTERM, then SIGKILL)");
  down->add_option("--dir", args->dir, "devnet directory")->default_val("devnet");
  down->callback([args] { set_exit_code(devnet_down(args->dir)); });
  auto* st = d->add_subcommand("status", "Height, view, committee and peers of every node");
  st->add_option("--dir", args->dir, "devnet directory")->default_val("devnet");
  st->callback([args] { set_exit_code(devnet_status(*args)); });
}

}  // namespace attestnet::cli
