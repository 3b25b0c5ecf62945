#pragma once

#include <CLI/CLI.hpp>
#include <string>

#include "core/bytes.h"
#include "core/result.h"

namespace attestnet::cli {

// Each add_* registers a subcommand whose callback stores its exit code.
void add_sim_command(CLI::App& app);
void add_ledger_command(CLI::App& app);
void add_verify_command(CLI::App& app);
void add_genesis_commands(CLI::App& app);
void add_evidence_command(CLI::App& app);
void add_attest_command(CLI::App& app);
int exit_code();
// A whole file, or an Errc::kIo error naming it.
Result<Bytes> read_file(const std::string& path);
void set_exit_code(int code);

}  // namespace attestnet::cli
