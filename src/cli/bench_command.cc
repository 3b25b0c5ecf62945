// `attestnet bench`: starts a devnet (or targets one), drives it with C concurrent clients for a
// duration (or with each of a list of client counts in turn, the best being the peak), and
// prints committed attestations/s and latency percentiles beside the machine's own limit
// measured in the same run (Ed25519 verifications/s on every core, divided by the
// verifications one attestation costs across the committee). With --compare-etcd it also runs a
// 3-node etcd cluster on 127.0.0.1 and drives it with the same client code and payload size, at
// each client count right after attestnet.
#include <openssl/evp.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <latch>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "api/client.h"
#include "cli/commands.h"
#include "evidence/binding.h"
#include "evidence/sim/sim.h"
#include "state/attestation.h"

namespace attestnet::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct BenchArgs {
  uint32_t nodes = 4;
  uint32_t committee_size = 0;
  uint64_t epoch_length = 0;
  std::string admission_policy;
  double duration = 30;
  // --concurrency: one value, or a list (closed loop at each in turn, on the same devnet; the
  // peak is the best of them, and --half-peak and --compare-etcd take it from there).
  std::vector<uint32_t> concurrency{16};
  std::string evidence = "sim";  // sim | none | tpm (pre-generated request files)
  std::string dir;
  std::string target;          // an existing devnet dir (not started or stopped by the bench)
  std::string requests_dir;    // --evidence tpm: signed request files to replay
  std::string save_responses;  // write every certified response here (offline checks)
  uint32_t payload = 512;
  bool compare_etcd = false;
  bool pin_cpus = false;                           // node i (and etcd member i) on CPU i mod (CPUs)
  std::optional<uint64_t> min_block_interval_ms;   // [consensus] of a devnet the bench starts
  std::optional<uint64_t> busy_block_interval_ms;  // the same
  bool json = false;
  uint16_t base_port = 27100;
  double rate = 0;             // --rate: open loop at this many requests/s (0: closed loop)
  int clients_nice = 0;        // --clients-nice: the client threads' nice value
  bool half_peak = false;      // --half-peak: then again, open loop at half the throughput reached
  std::string timeline;        // --timeline: each answered request's send time and latency (CSV)
  bool live_evidence = false;  // --live-evidence: make sim requests inside the run (before 25)
};

double ed25519_rate_all_cores() {
  crypto::init();
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  auto k = crypto::SecretKey::from_seed(crypto::test_seed("bench-verify"));
  Bytes msg(200, 7);
  auto sig = k.sign(as_view(msg));
  std::atomic<uint64_t> total{0};
  auto end = Clock::now() + std::chrono::milliseconds(1500);
  std::vector<std::thread> ts;
  for (unsigned i = 0; i < cores; ++i)
    ts.emplace_back([&] {
      uint64_t n = 0;
      while (Clock::now() < end) {
        for (int j = 0; j < 64; ++j) n += crypto::verify(k.public_key(), as_view(msg), sig);
      }
      total += n;
    });
  for (auto& t : ts) t.join();
  return static_cast<double>(total) / 1.5;
}

// CPU seconds this process (the bench's client threads, while a load runs) has used.
double self_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

struct Load {
  std::vector<double> latencies_ms;
  std::vector<std::pair<double, double>> timeline;  // (ms since the start it was due, latency)
  uint64_t ok = 0, failed = 0;
  double seconds = 0;
  std::string first_error;
};

double pct(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(i), v.end());
  return v[i];
}

// C clients, each: make a request, send it, wait for the answer, repeat until the deadline.
// rate > 0: open loop instead. Client c sends its k-th request at start + (k + c/C) * C/rate
// (together `rate` requests/s, spread evenly) and the latency is counted from that scheduled
// time, not from when the request went out: a client held up by a slow answer does not hide
// the wait of the requests behind it (coordinated omission, as wrk2 corrects it).
Load drive(uint32_t clients, double seconds,
           const std::function<
               std::pair<api::Url, std::pair<std::string, std::string>>(uint32_t, uint64_t)>& make,
           unsigned ok_status, const std::vector<api::Url>& failover,
           const std::string& save_dir = "", double rate = 0,
           const std::string& warm_path = "/healthz", int nice = 0) {
  Load load;
  std::mutex mu;
  // The clock starts once every client is running and connected: 96 threads starting and
  // connecting inside the run once showed as a stall at its start, of the bench, not the nodes.
  std::latch ready(clients), go(1);
  Clock::time_point start, end;
  std::vector<std::thread> ts;
  for (uint32_t c = 0; c < clients; ++c)
    ts.emplace_back([&, c] {
      // Linux: the calling thread only (nodes and etcd members keep theirs).
      if (nice != 0) (void)setpriority(PRIO_PROCESS, 0, nice);
      std::vector<double> mine;
      std::vector<std::pair<double, double>> when;
      uint64_t ok = 0, failed = 0;
      std::string err;
      std::optional<api::HttpSession> session;  // keep-alive, as a real client would
      if (!failover.empty()) {
        session.emplace(failover[c % failover.size()]);
        (void)session->call("GET", warm_path, "", "application/json", 5000);
      }
      ready.count_down();
      go.wait();
      double interval_s = rate > 0 ? clients / rate : 0;
      // Every client sends at least once, however short the run (on a slow build a client could
      // otherwise start after the end, and a test sending one request per node sent fewer).
      for (uint64_t i = 0; i == 0 || Clock::now() < end; ++i) {
        auto [url, tb] = make(c, i);
        if (tb.first.empty()) break;  // the generator has nothing left (pre-generated requests)
        if (!session) session.emplace(url);
        auto t0 = Clock::now();
        if (rate > 0) {
          double at = (static_cast<double>(i) + static_cast<double>(c) / clients) * interval_s;
          t0 = start +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(at));
          if (t0 >= end) break;
          std::this_thread::sleep_until(t0);
        }
        auto r = session->call("POST", tb.first, tb.second, "application/json", 30000);
        // A node that is down (connection refused): the client fails over to the next one, as
        // a VM agent given several node URLs would; the request is not lost.
        for (size_t k = 1; !r.ok() && k <= failover.size(); ++k) {
          session.emplace(failover[(c + k) % failover.size()]);
          r = session->call("POST", tb.first, tb.second, "application/json", 30000);
        }
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        if (r.ok() && r->status == ok_status) {
          ++ok;
          mine.push_back(ms);
          when.emplace_back(std::chrono::duration<double, std::milli>(t0 - start).count(), ms);
          if (!save_dir.empty()) {
            auto j = nlohmann::json::parse(r->body, nullptr, false);
            if (j.is_object() && j.contains("response"))
              std::ofstream(save_dir + "/" + j.value("request_id", std::string("x")) + ".json")
                  << j["response"].dump() << "\n";
          }
        } else {
          ++failed;
          if (err.empty())
            err = r.ok() ? std::to_string(r->status) + " " + r->body.substr(0, 200)
                         : r.error().reason;
        }
      }
      std::lock_guard lk(mu);
      load.latencies_ms.insert(load.latencies_ms.end(), mine.begin(), mine.end());
      load.timeline.insert(load.timeline.end(), when.begin(), when.end());
      load.ok += ok;
      load.failed += failed;
      if (load.first_error.empty()) load.first_error = err;
    });
  ready.wait();
  start = Clock::now();
  end = start + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  go.count_down();
  for (auto& t : ts) t.join();
  load.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return load;
}

nlohmann::json summarize(const char* what, Load& l) {
  double rate = static_cast<double>(l.ok) / l.seconds;
  nlohmann::json j = {{"system", what},
                      {"committed", l.ok},
                      {"failed", l.failed},
                      {"seconds", l.seconds},
                      {"per_second", rate},
                      {"p50_ms", pct(l.latencies_ms, 0.50)},
                      {"p99_ms", pct(l.latencies_ms, 0.99)},
                      {"p999_ms", pct(l.latencies_ms, 0.999)}};
  if (!l.first_error.empty()) j["first_error"] = l.first_error;
  return j;
}

// The run with the highest throughput (the first of equals): a system's peak over client counts.
const nlohmann::json& best_run(const nlohmann::json& runs) {
  return *std::max_element(runs.begin(), runs.end(), [](const auto& x, const auto& y) {
    return x["per_second"].template get<double>() < y["per_second"].template get<double>();
  });
}

// --timeline: one line per answered request, in the order they were due, so that a tail can be
// placed in time (a stall shows as a ramp of latencies, queueing as a spread).
void append_timeline(const std::string& path, const char* phase, Load& l, bool header) {
  std::sort(l.timeline.begin(), l.timeline.end());
  std::ofstream f(path, header ? std::ios::trunc : std::ios::app);
  if (header) f << "phase,due_ms,latency_ms\n";
  for (const auto& [due, ms] : l.timeline) f << phase << "," << due << "," << ms << "\n";
}

void print_row(const nlohmann::json& j) {
  std::printf(
      "  %-28s %8.1f/s  p50 %7.1f ms  p99 %7.1f ms  p99.9 %7.1f ms  (%llu ok, %llu failed)\n",
      j["system"].get<std::string>().c_str(), j["per_second"].get<double>(),
      j["p50_ms"].get<double>(), j["p99_ms"].get<double>(), j["p999_ms"].get<double>(),
      static_cast<unsigned long long>(j["committed"].get<uint64_t>()),
      static_cast<unsigned long long>(j["failed"].get<uint64_t>()));
  if (j.contains("first_error"))
    std::printf("    first error: %s\n", j["first_error"].get<std::string>().c_str());
}

// A 3-member etcd cluster on 127.0.0.1 (Debian's etcd-server), fsync per commit as etcd does.
struct Etcd {
  std::vector<pid_t> pids;
  std::vector<uint16_t> client_ports;
  ~Etcd() {
    for (pid_t p : pids) kill(p, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  }
  Status start(const std::string& dir, uint16_t base, bool pin_cpus) {
    unsigned ncpu = std::max(1u, std::thread::hardware_concurrency());
    std::string cluster;
    for (int i = 0; i < 3; ++i)
      cluster += (i ? "," : "") + std::string("e") + std::to_string(i) +
                 "=http://127.0.0.1:" + std::to_string(base + 100 + i);
    for (int i = 0; i < 3; ++i) {
      uint16_t cp = static_cast<uint16_t>(base + 200 + i),
               pp = static_cast<uint16_t>(base + 100 + i);
      client_ports.push_back(cp);
      std::string data = dir + "/etcd" + std::to_string(i);
      fs::remove_all(data);
      cpu_set_t cpu;  // member i on CPU i mod n, as the devnet's nodes with --pin-cpus
      CPU_ZERO(&cpu);
      CPU_SET(static_cast<unsigned>(i) % ncpu, &cpu);
      pid_t pid = fork();
      if (pid == 0) {
        if (pin_cpus) sched_setaffinity(0, sizeof(cpu), &cpu);
        std::string log = dir + "/etcd" + std::to_string(i) + ".log";
        FILE* f = std::freopen(log.c_str(), "w", stderr);
        (void)f;
        std::string name = "e" + std::to_string(i);
        std::string curl = "http://127.0.0.1:" + std::to_string(cp);
        std::string purl = "http://127.0.0.1:" + std::to_string(pp);
        execlp("etcd", "etcd", "--name", name.c_str(), "--data-dir", data.c_str(),
               "--listen-client-urls", curl.c_str(), "--advertise-client-urls", curl.c_str(),
               "--listen-peer-urls", purl.c_str(), "--initial-advertise-peer-urls", purl.c_str(),
               "--initial-cluster", cluster.c_str(), "--initial-cluster-state", "new",
               "--log-level", "error", static_cast<char*>(nullptr));
        _exit(127);
      }
      pids.push_back(pid);
    }
    auto deadline = Clock::now() + std::chrono::seconds(20);
    for (uint16_t cp : client_ports) {
      for (;;) {
        auto r = api::http_call({"127.0.0.1", cp, ""}, "GET", "/health", "", "", 500);
        if (r.ok() && r->body.find("true") != std::string::npos) break;
        if (Clock::now() > deadline)
          return make_error(Errc::kUnavailable, "etcd on 127.0.0.1:" + std::to_string(cp) +
                                                    " not healthy within 20 s (is etcd-server "
                                                    "installed? scripts/setup)");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    return {};
  }
};

std::string b64(const std::string& s) {  // etcd's JSON gateway takes base64 keys and values
  std::string out(4 * ((s.size() + 2) / 3), '\0');
  int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

int bench(const BenchArgs& a) {
  if (a.evidence != "sim" && a.evidence != "none" && a.evidence != "tpm") {
    std::fprintf(stderr, "bench: --evidence is sim, none or tpm\n");
    return 2;
  }
  if (a.evidence == "tpm" && a.requests_dir.empty()) {
    std::fprintf(stderr,
                 "bench: --evidence tpm replays pre-generated requests: give "
                 "--requests DIR (files written by attest --request-out)\n");
    return 2;
  }
  if (a.concurrency.empty() ||
      std::any_of(a.concurrency.begin(), a.concurrency.end(), [](uint32_t c) { return c == 0; })) {
    std::fprintf(stderr, "bench: --concurrency takes client counts of at least 1\n");
    return 2;
  }
  if (a.concurrency.size() > 1 && (a.rate > 0 || a.evidence == "tpm")) {
    std::fprintf(stderr,
                 "bench: a list of --concurrency values looks for the closed-loop peak: it "
                 "takes one value with --rate or --evidence tpm\n");
    return 2;
  }
  const uint32_t max_clients = *std::max_element(a.concurrency.begin(), a.concurrency.end());
  crypto::init();
  std::string dir = a.target.empty()
                        ? (a.dir.empty() ? fs::temp_directory_path().string() +
                                               "/attestnet-bench-" + std::to_string(getpid())
                                         : a.dir)
                        : a.target;
  auto platform = crypto::SecretKey::from_seed(crypto::test_seed("bench-sim-platform"));
  Bytes kernel = crypto::digest(crypto::HashAlg::kSha256, as_view(std::string("bench kernel")));
  bool started = false;
  if (a.target.empty()) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    DevnetOptions o;
    o.dir = dir;
    o.nodes = a.nodes;
    o.committee_size = a.committee_size;
    o.epoch_length = a.epoch_length;
    o.admission_policy = a.admission_policy;
    o.base_port = a.base_port;
    o.api_base_port = static_cast<uint16_t>(a.base_port + 50);
    o.ordering_only = a.evidence == "none";
    o.pin_cpus = a.pin_cpus;
    o.min_block_interval_ms = a.min_block_interval_ms;
    o.busy_block_interval_ms = a.busy_block_interval_ms;
    o.quiet = a.json;
    if (!o.ordering_only) {
      nlohmann::json pj = {{"id", "bench"},
                           {"version", 1},
                           {"sim",
                            {{"platform_keys", {to_hex(ByteView(platform.public_key()))}},
                             {"measurements", {{"kernel", {to_hex(kernel)}}}}}}};
      std::ofstream(dir + "/bench-policy.json") << pj.dump(2);
      o.policy = dir + "/bench-policy.json";
    }
    if (devnet_up(o) != 0) return 1;
    started = true;
  }
  std::vector<api::Url> urls;
  for (const auto& [name, port] : devnet_nodes(dir))
    if (port) urls.push_back({"127.0.0.1", port, ""});
  if (urls.empty()) {
    std::fprintf(stderr, "bench: no node configs in %s\n", dir.c_str());
    return 1;
  }
  uint32_t n = static_cast<uint32_t>(urls.size());
  if (!started) {
    // What answers on a --target devnet's ports must be that devnet: a stale one of another
    // network holding the ports (its own nodes then exit: address in use) was driven instead.
    // A node that does not answer is fine (a test drives a devnet with a member killed).
    auto g = load_genesis(dir + "/genesis.json");
    if (!g.ok()) {
      std::fprintf(stderr, "bench: %s/genesis.json: %s\n", dir.c_str(), g.error().reason.c_str());
      return 1;
    }
    const std::string ours = to_hex(g->hash());
    for (const auto& u : urls) {
      auto st = get_json(u.host, u.port, "/v1/status");
      if (!st.ok() || !st->is_object()) continue;
      std::string theirs = st->value("genesis_hash", std::string());
      if (theirs != ours) {
        std::fprintf(stderr,
                     "bench: 127.0.0.1:%u answers for another network (genesis %s; this "
                     "devnet's is %s): is another devnet running on the ports of %s?\n",
                     u.port, theirs.c_str(), ours.c_str(), dir.c_str());
        return 1;
      }
    }
  }

  double verify_rate = ed25519_rate_all_cores();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<Bytes> tpm_requests;
  if (a.evidence == "tpm")
    for (const auto& e : fs::directory_iterator(a.requests_dir))
      if (auto b = read_file(e.path().string()); b.ok()) tpm_requests.push_back(*b);
  // With --half-peak the pre-generated requests are split: the first half for the peak, the
  // second for the run at half of it (each request is submitted once).
  std::atomic<size_t> tpm_limit{a.half_peak ? tpm_requests.size() / 2 : tpm_requests.size()};

  // Anchors are refreshed per client every 100 requests (they stay recent for 1024 blocks).
  std::vector<Hash32> anchors(max_clients);
  auto refresh = [&](uint32_t c) {
    auto r = api::http_call(urls[c % n], "GET", "/v1/freshness");
    if (r.ok()) {
      auto j = nlohmann::json::parse(r->body, nullptr, false);
      if (auto h = hash32_from_hex(j.value("anchor", std::string()))) anchors[c] = *h;
    }
  };
  // Every client's first anchor is fetched before the clock starts (a burst of them inside the
  // run once showed as a 200 ms stall at its start); then one every 100 requests, in the run.
  std::vector<uint32_t> since_refresh(max_clients, 0);
  std::vector<uint64_t> seq(max_clients, 0);  // across all the runs: no repeats
  if (a.evidence == "sim")
    for (uint32_t c = 0; c < max_clients; ++c) refresh(c);
  std::atomic<uint64_t> counter{0};
  const std::string target = "/v1/attestations?wait=20";
  // One sim attestation request, as a VM's agent makes it, in the body the API takes.
  auto sim_body = [&](const Hash32& anchor, const std::string& vm_id) {
    // An ephemeral key per attestation, as `attestnet attest` makes: the evidence binds it,
    // so every request's evidence is its own. (A key per client once made a client's evidence
    // byte-identical for the 100 requests of an anchor, and each node's signature memo then
    // skipped the evidence's verification: half the appraisal cost the limit counts.)
    crypto::SecretKey vm_key = crypto::SecretKey::generate();
    Hash32 b = evidence::evidence_binding(anchor, vm_key.public_key());
    Bytes ev =
        evidence::sim::make_sim_evidence(platform, as_view(b), {{"kernel", kernel}}).encode();
    Bytes payload = state::AttestationRequest::make(vm_key, vm_id, "sim", ev, anchor).encode();
    return nlohmann::json{{"request", to_hex(as_view(payload))}}.dump();
  };
  // Sim requests are made before each run's clock starts, on every core, all bound to one fresh
  // anchor, as the TPM quotes are (--live-evidence: by each client inside the run, as before
  // session 25). A VM's agent makes its key, evidence and signature on the VM, not on the
  // verifiers' cores; made inside the run they took about half of the bench's 10-15% of the
  // machine. A client takes the next one while the anchor is less than kFreshFor blocks old
  // (the nodes refuse one older than 1,024 when they execute it) and makes its own otherwise,
  // or when they run out.
  struct Pregenerated {
    std::vector<std::string> bodies;
    uint64_t anchor_height = 0;
    std::atomic<size_t> next{0};
    std::atomic<uint64_t> tip{0}, made_in_run{0};
  } pre;
  constexpr uint64_t kFreshFor = 768;
  uint64_t pre_serial = 0;  // VM ids of pre-made requests, unique across the runs
  // The JSON object the first node that answers gives for `path` (a test may have killed one),
  // or null.
  auto from_any_node = [&](const char* path) {
    for (const auto& u : urls) {
      auto r = api::http_call(u, "GET", path);
      auto j = r.ok() ? nlohmann::json::parse(r->body, nullptr, false) : nlohmann::json();
      if (j.is_object()) return j;
    }
    return nlohmann::json();
  };
  auto pregenerate = [&](size_t count) {
    pre.bodies.clear();
    pre.next = 0;
    pre.made_in_run = 0;
    if (a.evidence != "sim" || a.live_evidence) return;
    // A client that makes its own later fetches a new anchor first (its last may be old now).
    std::fill(since_refresh.begin(), since_refresh.end(), 100);
    nlohmann::json j = from_any_node("/v1/freshness");
    auto anchor = j.is_object() ? hash32_from_hex(j.value("anchor", std::string())) : std::nullopt;
    if (!anchor) return;
    pre.anchor_height = j.value("height", uint64_t{0});
    pre.tip = pre.anchor_height;
    pre.bodies.resize(count);
    const uint64_t base = pre_serial;
    pre_serial += count;
    std::vector<std::thread> ts;
    for (unsigned t = 0; t < cores; ++t)
      ts.emplace_back([&, t] {
        for (size_t k = t; k < count; k += cores)
          pre.bodies[k] = sim_body(*anchor, "bench-vm-pre-" + std::to_string(base + k));
      });
    for (auto& t : ts) t.join();
  };
  auto make = [&](uint32_t c, uint64_t) {
    Bytes payload;
    if (a.evidence == "sim") {
      if (pre.tip.load(std::memory_order_relaxed) < pre.anchor_height + kFreshFor) {
        size_t k = pre.next.fetch_add(1, std::memory_order_relaxed);
        if (k < pre.bodies.size())
          return std::make_pair(urls[c % n], std::make_pair(target, std::move(pre.bodies[k])));
      }
      ++pre.made_in_run;
      if (++since_refresh[c] > 100) {
        refresh(c);
        since_refresh[c] = 1;
      }
      // Unique requests: the VM id carries the sequence number.
      return std::make_pair(
          urls[c % n],
          std::make_pair(target, sim_body(anchors[c], "bench-vm-" + std::to_string(c) + "-" +
                                                          std::to_string(seq[c]++))));
    } else if (a.evidence == "tpm") {
      // Each pre-generated request once: a repeat would be answered from the ledger
      // (at-most-once) and flatter the figures.
      uint64_t k = counter++;
      if (k >= tpm_limit.load())
        return std::make_pair(urls[c % n], std::make_pair(std::string(), std::string()));
      payload = tpm_requests[k];
    } else {
      // Bytes 0-1 stay 0 (no transaction tag: state::tx_kind says unknown; a counter there
      // once read as a trust transaction's tag and was refused), then the sequence number.
      payload.assign(std::max<size_t>(a.payload, 11), 0);
      uint64_t k = counter++;
      for (int j = 0; j < 8; ++j)
        payload[static_cast<size_t>(2 + j)] = static_cast<uint8_t>(k >> (8 * j));
      payload[payload.size() - 1] = static_cast<uint8_t>(getpid());
    }
    nlohmann::json body = {{"request", to_hex(as_view(payload))}};
    return std::make_pair(urls[c % n], std::make_pair(target, body.dump()));
  };
  std::string clients_list;
  for (uint32_t c : a.concurrency)
    clients_list += (clients_list.empty() ? "" : ", ") + std::to_string(c);
  std::string intervals;
  if (a.min_block_interval_ms && started)
    intervals += " (min_block_interval_ms " + std::to_string(*a.min_block_interval_ms) + ")";
  if (a.busy_block_interval_ms && started)
    intervals += " (busy_block_interval_ms " + std::to_string(*a.busy_block_interval_ms) + ")";
  if (!a.json)
    std::printf(
        "bench: %u nodes%s%s, %s clients, %.0f s%s, evidence %s (machine: %u cores, Ed25519 "
        "verify %.0f/s on all cores)\n",
        n, a.pin_cpus && started ? " (node i on CPU i mod cores)" : "", intervals.c_str(),
        clients_list.c_str(), a.duration, a.concurrency.size() > 1 ? " each" : "",
        a.evidence.c_str(), std::thread::hardware_concurrency(), verify_rate);
  if (!a.json && a.clients_nice != 0)
    std::printf("  the client threads run at nice %d (the nodes and etcd at their own)\n",
                a.clients_nice);
  if (!a.save_responses.empty()) fs::create_directories(a.save_responses);
  // Blocks committed during the run (a --target devnet already has a chain).
  auto height = [&]() -> uint64_t {
    auto r = api::http_call(urls[0], "GET", "/v1/status");
    if (!r.ok()) return 0;
    auto s = nlohmann::json::parse(r->body, nullptr, false);
    return s.is_object() ? s.value("height", uint64_t{0}) : 0;
  };
  // Summed over the nodes, from their /metrics: the Ed25519 verifications they counted
  // (attestnet_signature_verifications_total), to set against the cost model below, and their
  // CPU time (process_cpu_seconds_total). Negative when a node does not answer.
  struct NodeCounters {
    double verifications = 0, cpu_seconds = 0;
  };
  auto node_counters = [&]() -> NodeCounters {
    NodeCounters sum;
    auto value = [](const std::string& body, const std::string& name) -> double {
      const std::string key = "\n" + name + " ";
      auto at = body.find(key);
      return at == std::string::npos ? -1 : std::strtod(body.c_str() + at + key.size(), nullptr);
    };
    for (const auto& u : urls) {
      auto r = api::http_call(u, "GET", "/metrics");
      double v = r.ok() ? value(r->body, "attestnet_signature_verifications_total") : -1;
      double cpu = r.ok() ? value(r->body, "process_cpu_seconds_total") : -1;
      if (v < 0 || cpu < 0) return {-1, -1};
      sum.verifications += v;
      sum.cpu_seconds += cpu;
    }
    return sum;
  };
  // Where the machine's CPU went over a load (both cores: wall time x cores): the nodes, the
  // bench's own client threads (which share the machine with the nodes here, unlike a VM's
  // agent), and, of the nodes' CPU, the share the signature checks they counted would take at
  // the Ed25519 rate measured above (one signature checked over and over; distinct ones, as a
  // node checks them, cost ~6% more: BM_Ed25519VerifyDistinct). The limit counts the whole
  // machine, so the ratio can reach 60% only if the clients and the nodes' other work leave
  // that much.
  struct CpuSpan {
    NodeCounters nodes;
    double self;
    Clock::time_point start;
  };
  auto cpu_begin = [&]() { return CpuSpan{node_counters(), self_cpu_seconds(), Clock::now()}; };
  // `after`: node_counters() as the load ended.
  auto cpu_end = [&](const CpuSpan& b, const NodeCounters& after, nlohmann::json& row,
                     uint64_t ok) {
    const double machine = std::chrono::duration<double>(Clock::now() - b.start).count() * cores;
    row["client_cpu_share"] = (self_cpu_seconds() - b.self) / machine;
    const double node_cpu = b.nodes.cpu_seconds >= 0 && after.cpu_seconds >= b.nodes.cpu_seconds
                                ? after.cpu_seconds - b.nodes.cpu_seconds
                                : -1;
    if (node_cpu <= 0 || ok == 0) return;
    row["node_cpu_share"] = node_cpu / machine;
    row["node_cpu_us_per_attestation"] = 1e6 * node_cpu / static_cast<double>(ok);
    const double checked = after.verifications - b.nodes.verifications;
    std::string verify_note;
    if (b.nodes.verifications >= 0 && checked > 0) {
      row["verify_share_of_node_cpu"] = checked * cores / verify_rate / node_cpu;
      verify_note =
          ", " + std::to_string(std::lround(100 * row["verify_share_of_node_cpu"].get<double>())) +
          "% of it checking signatures";
    }
    if (!a.json)
      std::printf(
          "  CPU: the nodes %.0f%% of the machine (%.0f us per request%s), the bench's clients "
          "%.0f%%\n",
          100 * row["node_cpu_share"].get<double>(),
          row["node_cpu_us_per_attestation"].get<double>(), verify_note.c_str(),
          100 * row["client_cpu_share"].get<double>());
  };
  // A load of the devnet, after pregenerate(). Meanwhile a thread reads the tip's height every
  // 100 ms, to tell the clients when the anchor gets old.
  auto drive_devnet = [&](uint32_t clients, double rate) {
    std::atomic<bool> done{false};
    std::thread watch;
    if (!pre.bodies.empty())
      watch = std::thread([&] {
        while (!done.load()) {
          if (auto st = from_any_node("/v1/status"); st.is_object())
            pre.tip = std::max(pre.tip.load(), st.value("height", uint64_t{0}));
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
      });
    Load l = drive(clients, a.duration, make, 200, urls, a.save_responses, rate, "/healthz",
                   a.clients_nice);
    done = true;
    if (watch.joinable()) watch.join();
    return l;
  };
  // Requests to make before a run: enough for the whole run at `rate`, or, closed loop, at the
  // limit's per-request part (the two signatures per node: no run can go faster) or 500/s per
  // client (an answer in 2 ms, faster than a block commits here), whichever is lower.
  auto to_make = [&](uint32_t clients, double rate) -> size_t {
    double per_s = rate > 0 ? rate * 1.05 : std::min(verify_rate / (2.0 * n), 500.0 * clients);
    return std::min<size_t>(400'000, static_cast<size_t>(per_s * a.duration) + clients);
  };
  // What the clients made inside a run (the rest were made before its clock started).
  auto note_made = [&](nlohmann::json& row, const Load& l) {
    if (a.evidence != "sim") return;
    const uint64_t in_run = pre.made_in_run.load();
    row["requests_made_in_run"] = in_run;
    row["requests_made_before"] = std::min<uint64_t>(pre.next.load(), pre.bodies.size());
    if (!a.json && !a.live_evidence)
      std::printf(
          "  %llu sim requests were made before the clock started, %llu by the clients "
          "in the run%s\n",
          static_cast<unsigned long long>(row["requests_made_before"].get<uint64_t>()),
          static_cast<unsigned long long>(in_run),
          in_run > 0 && l.ok > 0 ? " (the anchor grew old, or they ran out)" : "");
  };
  // One run at C clients, with the machine's limit for the requests per block it reached.
  auto run = [&](uint32_t clients, const std::string& label, bool first) {
    pregenerate(to_make(clients, a.rate));
    uint64_t h_before = height();
    CpuSpan cpu = cpu_begin();
    Load l = drive_devnet(clients, a.rate);
    uint64_t h_after = height();
    const NodeCounters after = node_counters();
    const double v_before = cpu.nodes.verifications, v_after = after.verifications;
    if (!a.timeline.empty()) append_timeline(a.timeline, label.c_str(), l, first);
    const std::string name = a.concurrency.size() > 1
                                 ? "attestnet, " + std::to_string(clients) + " clients"
                                 : std::string("attestnet");
    nlohmann::json row = summarize(name.c_str(), l);
    row["clients"] = clients;
    // Ed25519 verifications one attestation costs across the committee: per node the VM's
    // request signature and the sim evidence signature, both on arrival (execution finds them
    // in the node's memo, and a response's header certificate is checked once per header);
    // and per block, at each node, the pre-prepare, prepares, commits and header votes
    // (amortised over the requests per block).
    double batch = 0;
    if (h_after > h_before)
      batch = static_cast<double>(l.ok) / static_cast<double>(h_after - h_before);
    double per_req = a.evidence == "none" ? 0 : 2.0 * n;
    double per_block = static_cast<double>(n) * (1 + 3 * static_cast<double>(n - 1));
    double cost = per_req + (batch > 0 ? per_block / batch : per_block);
    double limit = verify_rate / cost;
    row["verifications_per_attestation"] = cost;
    row["requests_per_block"] = batch;
    row["machine_limit_per_second"] = limit;
    row["ratio_to_limit"] = row["per_second"].get<double>() / limit;
    // The nodes' own count (answers to the bench's requests only when nothing else ran).
    double measured = v_before >= 0 && v_after >= v_before && l.ok > 0
                          ? (v_after - v_before) / static_cast<double>(l.ok)
                          : 0;
    if (measured > 0) row["measured_verifications_per_attestation"] = measured;
    if (!a.json) {
      print_row(row);
      std::printf(
          "  %.1f requests/block; %.1f verifications per attestation (the nodes counted %.1f); "
          "machine limit %.0f/s; attestnet at %.0f%% of it\n",
          batch, cost, measured, limit, 100 * row["ratio_to_limit"].get<double>());
    }
    cpu_end(cpu, after, row, l.ok);
    note_made(row, l);
    return std::make_pair(row, l.ok);
  };
  nlohmann::json out = {
      {"nodes", n},
      {"clients",
       a.concurrency.size() > 1 ? nlohmann::json(a.concurrency) : nlohmann::json(a.concurrency[0])},
      {"pin_cpus", a.pin_cpus && started},
      {"clients_nice", a.clients_nice},
      {"min_block_interval_ms",
       a.min_block_interval_ms ? nlohmann::json(*a.min_block_interval_ms) : nlohmann::json()},
      {"busy_block_interval_ms",
       a.busy_block_interval_ms ? nlohmann::json(*a.busy_block_interval_ms) : nlohmann::json()},
      {"evidence", a.evidence},
      {"sim_requests_made", a.evidence != "sim" ? nlohmann::json()
                            : a.live_evidence   ? nlohmann::json("in the run")
                                                : nlohmann::json("before each run")},
      {"ed25519_verify_per_second", verify_rate}};
  // "attestnet" is the run with the highest throughput (the peak); with a list of client
  // counts every run is under "runs" as well, in the order they ran.
  // With --compare-etcd, etcd runs at each client count right after attestnet (both stay up
  // meanwhile, the idle one taking next to nothing): this host's speed drifts over minutes, and
  // with every attestnet run first and every etcd run after them, the two peaks were taken up
  // to six minutes apart.
  std::optional<Etcd> etcd;
  std::vector<api::Url> etcd_urls;
  const std::string value(a.payload, 'v');
  auto put = [&](uint32_t c, uint64_t i) {
    nlohmann::json body = {{"key", b64("k" + std::to_string(c) + "-" + std::to_string(i))},
                           {"value", b64(value)}};
    return std::make_pair(api::Url{"127.0.0.1", etcd->client_ports[c % 3], ""},
                          std::make_pair(std::string("/v3/kv/put"), body.dump()));
  };
  if (a.compare_etcd) {
    etcd.emplace();
    Status st = etcd->start(dir, static_cast<uint16_t>(a.base_port + 1000), a.pin_cpus);
    if (!st.ok()) {
      std::fprintf(stderr, "bench: %s\n", st.error().reason.c_str());
      if (started) devnet_down(dir, a.json);
      return 1;
    }
    for (uint16_t p : etcd->client_ports) etcd_urls.push_back({"127.0.0.1", p, ""});
  }
  nlohmann::json runs = nlohmann::json::array(), etcd_runs = nlohmann::json::array();
  uint64_t committed = 0;
  for (size_t i = 0; i < a.concurrency.size(); ++i) {
    const uint32_t c = a.concurrency[i];
    auto [row, ok] =
        run(c, a.concurrency.size() > 1 ? "closed_" + std::to_string(c) : "peak", i == 0);
    committed += ok;
    if (etcd) {
      Load e = drive(c, a.duration, put, 200, etcd_urls, "", 0, "/health", a.clients_nice);
      const std::string name = a.concurrency.size() > 1 ? "etcd, " + std::to_string(c) + " clients"
                                                        : std::string("etcd (3 members, put)");
      nlohmann::json erow = summarize(name.c_str(), e);
      erow["clients"] = c;
      row["over_etcd"] =
          row["per_second"].get<double>() / std::max(1e-9, erow["per_second"].get<double>());
      if (!a.json) {
        print_row(erow);
        std::printf("  attestnet / etcd at %u clients = %.2fx\n", c,
                    row["over_etcd"].get<double>());
      }
      etcd_runs.push_back(std::move(erow));
    }
    runs.push_back(std::move(row));
  }
  out["attestnet"] = best_run(runs);
  if (a.concurrency.size() > 1) {
    out["runs"] = runs;
    if (!a.json)
      std::printf("  peak: %.1f/s with %u clients\n", out["attestnet"]["per_second"].get<double>(),
                  out["attestnet"]["clients"].get<uint32_t>());
  }
  const uint32_t peak_clients = out["attestnet"]["clients"].get<uint32_t>();
  if (a.half_peak) {
    // The latency goal is stated at half the peak: offer exactly that, open loop, with the
    // peak's clients.
    double offered = out["attestnet"]["per_second"].get<double>() / 2;
    if (a.evidence == "tpm") {
      counter = tpm_requests.size() / 2;
      tpm_limit = tpm_requests.size();
    }
    pregenerate(to_make(peak_clients, offered));
    CpuSpan cpu = cpu_begin();
    Load h = drive_devnet(peak_clients, offered);
    out["half_peak"] = summarize("attestnet at half peak", h);
    if (!a.timeline.empty()) append_timeline(a.timeline, "half_peak", h, false);
    out["half_peak"]["offered_per_second"] = offered;
    if (!a.json) {
      std::printf("  then %.0f/s offered (half of it), open loop, %u clients:\n", offered,
                  peak_clients);
      print_row(out["half_peak"]);
    }
    cpu_end(cpu, node_counters(), out["half_peak"], h.ok);
    note_made(out["half_peak"], h);
  }
  if (started) {
    devnet_down(dir, a.json);
  }
  if (etcd) {
    etcd.reset();
    out["etcd"] = best_run(etcd_runs);
    if (a.concurrency.size() > 1) out["etcd_runs"] = etcd_runs;
    out["attestnet_over_etcd"] = out["attestnet"]["per_second"].get<double>() /
                                 std::max(1e-9, out["etcd"]["per_second"].get<double>());
    if (!a.json)
      std::printf("  attestnet / etcd = %.2fx%s\n", out["attestnet_over_etcd"].get<double>(),
                  a.concurrency.size() > 1 ? " (peak over peak)" : "");
  }
  if (a.json) std::printf("%s\n", out.dump(2).c_str());
  if (a.target.empty() && a.dir.empty()) fs::remove_all(dir);
  return committed > 0 ? 0 : 1;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* b = app.add_subcommand("bench", "Drive a devnet and report throughput and latency");
  b->add_option("--nodes", a->nodes, "registered nodes (a devnet the bench starts)")
      ->default_val(4);
  b->add_option("--committee-size", a->committee_size,
                "seats of the devnet the bench starts (default: every node)");
  b->add_option("--epoch-length", a->epoch_length,
                "blocks per epoch of the devnet the bench starts (default 0: no epochs)");
  b->add_option("--duration", a->duration, "seconds of load")->default_val(30);
  b->add_option("--concurrency", a->concurrency,
                "concurrent clients; a list (96,256,512) runs closed loop at each in turn and "
                "takes the best as the peak (for --half-peak and --compare-etcd)")
      ->delimiter(',')
      ->default_str("16");
  b->add_option("--evidence", a->evidence,
                "sim (signed sim evidence, appraised) | none (ordering only) | tpm (--requests)")
      ->default_val("sim");
  b->add_option("--requests", a->requests_dir, "pre-generated request files (--evidence tpm)");
  b->add_option("--payload", a->payload, "payload bytes (--evidence none, etcd values)")
      ->default_val(512);
  b->add_option("--save-responses", a->save_responses,
                "write each certified response to DIR/REQUEST_ID.json");
  b->add_option("--dir", a->dir, "where the bench's devnet lives (default: a temp dir)");
  b->add_option("--admission-policy", a->admission_policy,
                "genesis policy for nodes joining later (attestnet join)");
  b->add_option("--target", a->target, "drive this running devnet instead of starting one");
  b->add_option("--base-port", a->base_port, "first port the bench's devnet uses")
      ->default_val(27100);
  b->add_option(
      "--rate", a->rate,
      "open loop: offer this many requests/s in all, latency counted from each "
      "request's scheduled time (default: closed loop, each client waits for its answer)");
  b->add_flag("--half-peak", a->half_peak,
              "after the run, offer half the throughput it reached (open loop) and report the "
              "latency there");
  b->add_flag("--compare-etcd", a->compare_etcd,
              "also drive a 3-node etcd cluster (etcd-server) with the same clients and payload");
  b->add_flag("--pin-cpus", a->pin_cpus,
              "run node i (and etcd member i) on CPU i mod (CPUs): a devnet the bench starts");
  b->add_option("--clients-nice", a->clients_nice,
                "run the load generator's client threads at this nice value (e.g. 10), so that on "
                "a machine it shares with the nodes they do not delay the nodes' threads; latency "
                "still counts from each request's due time, so a late client counts against the "
                "nodes (default 0)")
      ->check(CLI::Range(0, 19));
  b->add_option("--min-block-interval-ms", a->min_block_interval_ms,
                "[consensus] min_block_interval_ms of a devnet the bench starts (default: the "
                "node's, 12; 0: off)");
  b->add_option("--busy-block-interval-ms", a->busy_block_interval_ms,
                "[consensus] busy_block_interval_ms of a devnet the bench starts (default: the "
                "node's, 20; at most --min-block-interval-ms, e.g. 0: a fixed interval)");
  b->add_option("--timeline", a->timeline,
                "write each answered request's due time and latency to FILE (CSV), to see when "
                "the slow ones happened");
  b->add_flag("--live-evidence", a->live_evidence,
              "sim evidence: each client makes its requests inside the run (a key, the evidence "
              "and two signatures each, on the nodes' cores) instead of before the clock starts");
  b->add_flag("--json", a->json, "print the results as JSON");
  b->callback([a] { set_exit_code(bench(*a)); });
}

}  // namespace attestnet::cli
