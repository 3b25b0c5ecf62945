#include "node/config.h"

#include <toml++/toml.h>
#include <filesystem>
#include <sstream>

namespace attestnet::node {

Result<HostPort> parse_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    return make_error(Errc::kInvalidArgument, "\"" + s + "\" is not host:port");
  HostPort hp;
  hp.host = s.substr(0, colon);
  try {
    size_t used = 0;
    unsigned long p = std::stoul(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p > 65535) throw std::out_of_range("port");
    hp.port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return make_error(Errc::kInvalidArgument, "\"" + s + "\": the port is not a number 0-65535");
  }
  return hp;
}

Result<NodeConfig> load_config(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return make_error(Errc::kInvalidArgument, os.str());
  } catch (const std::exception& e) {
    return make_error(Errc::kIo, "cannot read " + path + ": " + e.what());
  }
  NodeConfig c;
  c.config_path = path;
  std::filesystem::path base = std::filesystem::path(path).parent_path();
  auto rel = [&](const std::string& p) {
    return std::filesystem::path(p).is_absolute() ? p : (base / p).string();
  };
  auto need = [&](const char* key, std::string* out) -> Status {
    auto v = t["node"][key].value<std::string>();
    if (!v || v->empty())
      return make_error(Errc::kInvalidArgument,
                        path + ": [node] " + key + " is missing (a path, as a string)");
    *out = rel(*v);
    return {};
  };
  ATN_CHECK(need("key", &c.key_file));
  ATN_CHECK(need("genesis", &c.genesis_file));
  ATN_CHECK(need("data_dir", &c.data_dir));
  if (!t["node"]["ordering_only"].value_or(false)) {
    ATN_CHECK(need("policy", &c.policy_file));
  } else {
    c.ordering_only = true;
  }
  if (auto v = t["listen"]["peer"].value<std::string>()) {
    ATN_TRY(auto hp, parse_host_port(*v));
    c.peer_listen = hp;
  }
  if (auto v = t["listen"]["api"].value<std::string>()) {
    auto hp = parse_host_port(*v);
    if (!hp.ok())
      return make_error(Errc::kInvalidArgument, path + ": [listen] api: " + hp.error().reason);
    c.api_listen = *hp;
  }
  auto num = [&](const char* table, const char* key, auto* out, double lo, double hi) -> Status {
    auto node = t[table][key];
    if (!node) return {};
    auto v = node.template value<double>();
    if (!v || *v < lo || *v > hi)
      return make_error(Errc::kInvalidArgument, path + ": [" + table + "] " + key +
                                                    " must be a number in [" + std::to_string(lo) +
                                                    ", " + std::to_string(hi) + "]");
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(*v);
    return {};
  };
  ATN_CHECK(num("consensus", "batch_max", &c.batch_max, 1, 100000));
  ATN_CHECK(num("consensus", "batch_wait_ms", &c.batch_wait_ms, 0, 10000));
  ATN_CHECK(num("consensus", "view_change_timeout_ms", &c.view_change_timeout_ms, 50, 600000));
  ATN_CHECK(num("consensus", "max_inflight_blocks", &c.max_inflight_blocks, 0, 1024));
  ATN_CHECK(num("consensus", "pipeline_min_batch", &c.pipeline_min_batch, 0, 100000));
  ATN_CHECK(num("consensus", "min_block_interval_ms", &c.min_block_interval_ms, 0, 10000));
  ATN_CHECK(num("consensus", "busy_block_interval_ms", &c.busy_block_interval_ms, 0, 10000));
  ATN_CHECK(num("consensus", "prepare_lease", &c.prepare_lease, 0, 1 << 20));
  ATN_CHECK(num("api", "max_body_bytes", &c.max_body_bytes, 1024, 64 << 20));
  ATN_CHECK(num("api", "rate_limit_per_second", &c.rate_limit_per_second, 0, 1e9));
  ATN_CHECK(num("api", "rate_limit_burst", &c.rate_limit_burst, 1, 1e9));
  ATN_CHECK(num("node", "workers", &c.workers, 1, 64));
  ATN_CHECK(num("node", "io_threads", &c.io_threads, 1, 64));
  ATN_CHECK(num("node", "snapshot_interval", &c.snapshot_interval, 1, 1 << 30));
  if (auto cpus = t["node"]["cpus"]; cpus) {
    auto* arr = cpus.as_array();
    if (!arr || arr->empty())
      return make_error(Errc::kInvalidArgument,
                        path + ": [node] cpus must be a list of CPU numbers, e.g. [0, 1]");
    for (const auto& v : *arr) {
      auto x = v.value<int64_t>();
      if (!x || *x < 0 || *x >= 1024)
        return make_error(Errc::kInvalidArgument,
                          path + ": [node] cpus: each entry is a CPU number from 0 to 1023");
      c.cpus.push_back(static_cast<uint32_t>(*x));
    }
  }
  if (auto* peers = t["peers"].as_table()) {
    for (const auto& [k, v] : *peers) {
      auto s = v.value<std::string>();
      if (!s) return make_error(Errc::kInvalidArgument, path + ": [peers] values are host:port");
      ATN_CHECK(parse_host_port(*s));
      c.peer_overrides[std::string(k.str())] = *s;
    }
  }
  return c;
}

}  // namespace attestnet::node
