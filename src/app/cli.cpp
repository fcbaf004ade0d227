#include "app/cli.hpp"

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>
#include <string_view>

#include "app/daemon.hpp"
#include "app/fd_limit.hpp"
#include "app/spool_dump.hpp"
#include "build_config.hpp"
#include "config/loader.hpp"

namespace rtm::app {
namespace {

constexpr std::string_view default_config_path = "/etc/rtm-bridge/rtm-bridge.yaml";

constexpr std::string_view usage_text =
    "Usage: rtm-bridge [--config PATH] [--check-config]\n"
    "       rtm-bridge --spool-dump PATH\n"
    "       rtm-bridge --version | --help\n"
    "\n"
    "Bridges vendor real-time messaging streams (Acme Socket.IO RTM, Slack legacy RTM) into Kafka topics.\n"
    "\n"
    "Options:\n"
    "  --config PATH     the YAML config (default: /etc/rtm-bridge/rtm-bridge.yaml)\n"
    "  --check-config    load and validate the config, print a summary (secrets masked), run nothing;\n"
    "                    exit 0 when valid, 78 when not\n"
    "  --spool-dump PATH print every record of the spool directory PATH not yet confirmed by Kafka, one JSON\n"
    "                    object per line, and a summary on stderr; read-only, safe while the daemon runs\n"
    "  --version         print the version and exit\n"
    "  --help            print this help and exit\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop gracefully (upstreams closed, deliveries drained); SIGHUP reloads the config.\n"
    "Exit codes: 0 clean stop, 1 other failure, 64 bad command line, 69 Kafka unavailable (a fatal producer error;\n"
    "            cluster mode: unreachable at start, or a fatal group error), 78 bad config (cluster mode: also the\n"
    "            assignment topic missing or with another partition count).\n";

struct options {
  std::string config_path{default_config_path};
  bool check_config = false;
  std::string spool_dump;
  bool version = false;
  bool help = false;
};

// Returns an error text for a bad command line, empty when it parsed.
std::string parse(int argc, char** argv, options& out) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--config" || arg == "-c") {
      if (i + 1 >= argc) {
        return std::string(arg) + " needs a path";
      }
      out.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      out.config_path = std::string(arg.substr(9));
    } else if (arg == "--spool-dump") {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).empty()) {
        return "--spool-dump needs the spool directory";
      }
      out.spool_dump = argv[++i];
    } else if (arg == "--check-config") {
      out.check_config = true;
    } else if (arg == "--version" || arg == "-V") {
      out.version = true;
    } else if (arg == "--help" || arg == "-h") {
      out.help = true;
    } else {
      return "unknown argument '" + std::string(arg) + "'";
    }
  }
  if (out.config_path.empty()) {
    return "--config needs a non-empty path";
  }
  return {};
}

void print_problems(const config::load_error& e) {
  for (const auto& p : e.problems()) {
    std::cerr << p.format() << '\n';
  }
}

}  // namespace

int main(int argc, char** argv) noexcept {
  try {
    options opts;
    if (const std::string err = parse(argc, argv, opts); !err.empty()) {
      std::cerr << "rtm-bridge: " << err << "\n\n" << usage_text;
      return exit_usage;
    }
    if (opts.help) {
      std::cout << usage_text;
      return exit_ok;
    }
    if (opts.version) {
      std::cout << "rtm-bridge " << RTM_BRIDGE_VERSION << '\n';
      return exit_ok;
    }
    if (!opts.spool_dump.empty()) {
      return spool_dump(opts.spool_dump, std::cout, std::cerr);
    }
    // Before anything opens a descriptor worth counting; --check-config raises it too, so it judges the config
    // against the limit the daemon will have.
    const descriptor_limit descriptors = raise_descriptor_limit();
    config::config cfg;
    try {
      cfg = config::load_file(opts.config_path);
    } catch (const config::load_error& e) {
      print_problems(e);
      if (opts.check_config) {
        std::cerr << "rtm-bridge: " << opts.config_path << ": invalid (" << e.problems().size() << " problem"
                  << (e.problems().size() == 1 ? "" : "s") << ")\n";
      }
      return exit_config;
    }
    if (const std::string shortfall = descriptor_shortfall(cfg, descriptors); !shortfall.empty()) {
      // A config problem in effect: the connections it asks for cannot all be open at once under this limit.
      std::cerr << opts.config_path << ": " << shortfall << '\n';
      if (opts.check_config) {
        std::cerr << "rtm-bridge: " << opts.config_path << ": does not fit the file descriptor limit\n";
      }
      return exit_config;
    }
    if (opts.check_config) {
      std::cout << config::summary(cfg) << descriptor_summary(cfg, descriptors);
      return exit_ok;
    }
    return run_daemon(std::move(cfg));
  } catch (const std::exception& e) {
    std::cerr << "rtm-bridge: " << e.what() << '\n';
    return exit_failure;
  }
}

}  // namespace rtm::app
