// The schema tables against what is derived from them by hand: the example config must show every key (with its
// default where the table says so), and the committed docs/config.md must be what the tables generate.
#include "config/schema.hpp"

#include <yaml-cpp/yaml.h>

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "config/loader.hpp"
#include "config/reference.hpp"
#include "config/schema_values.hpp"
#include "support/process.hpp"

using namespace rtm::config;
using schema::in_example;
using schema::key_spec;

namespace {

// Walks the tables alongside a parsed example file and lists what disagrees: a key of the table missing from the
// example (unless the table says it is left out on purpose), or a shown default that differs from the table's.
class example_checker {
 public:
  explicit example_checker(const YAML::Node& root) { frames_.push_back(frame{root, "", std::nullopt}); }

  [[nodiscard]] const std::vector<std::string>& failures() const noexcept { return failures_; }

  template <class T, class... Shown>
  void key(const T& /*member*/, const key_spec& spec, const Shown&... /*shown*/) {
    frame& fr = frames_.back();
    const YAML::Node node = fr.node[std::string(spec.name)];
    if constexpr (std::is_same_v<T, connection_kind>) {
      int value = 0;
      if (node.IsScalar() && schema::parse_value(node.Scalar(), spec, value)) {
        fr.kind = static_cast<connection_kind>(value);
      }
    }
    if (!present(fr, spec, node) || spec.example != in_example::shows_default) {
      return;
    }
    if (spec.has_default()) {
      if constexpr (requires(T value) { schema::parse_value(spec.def, spec, value); }) {
        T expected{};
        T shown{};
        REQUIRE(schema::parse_value(spec.def, spec, expected));
        const bool same = node.IsScalar() ? schema::parse_value(node.Scalar(), spec, shown) && shown == expected
                                          : (node.IsMap() || node.IsSequence()) && node.size() == 0 &&
                                                schema::parse_value(spec.def, spec, shown);
        if (!same) {
          fail(fr, spec, "shows " + text_of(node) + ", the table's default is " + std::string(spec.def));
        }
      }
    } else if (spec.required_for == schema::no_kind && !node.IsNull()) {
      fail(fr, spec, "shows " + text_of(node) + ", but the key has no default: show it as null");
    }
  }

  template <class S>
  void section(const S& member, const key_spec& spec) {
    frame& fr = frames_.back();
    const YAML::Node node = fr.node[std::string(spec.name)];
    if (!present(fr, spec, node)) {
      return;
    }
    frames_.push_back(frame{node, child(fr, spec), std::nullopt});
    schema::visit(*this, member);
    frames_.pop_back();
  }

  template <class T, class... Shown>
  void list(const std::vector<T>& /*items*/, const key_spec& spec, const Shown&... /*shown*/) {
    frame& fr = frames_.back();
    const YAML::Node node = fr.node[std::string(spec.name)];
    if (!present(fr, spec, node)) {
      return;
    }
    const std::string path = child(fr, spec);
    std::vector<bool> kinds_seen(schema::kind_choices.size());
    bool has_kinds = false;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const T prototype;
      frames_.push_back(frame{node[i], path + "[" + std::to_string(i) + "]", std::nullopt});
      schema::visit(*this, prototype);
      if (frames_.back().kind) {
        has_kinds = true;
        kinds_seen.at(static_cast<std::size_t>(*frames_.back().kind)) = true;
      }
      frames_.pop_back();
    }
    for (std::size_t k = 0; has_kinds && k < kinds_seen.size(); ++k) {
      if (!kinds_seen[k]) {
        failures_.push_back(path + ": no item of kind " + std::string(schema::kind_choices.at(k).name) +
                            " (the example shows every kind's keys)");
      }
    }
  }

  template <class Values, class Secrets>
  void properties(const Values& values, const Secrets& /*secrets*/, const key_spec& spec) {
    key(values, spec);
  }

 private:
  struct frame {
    YAML::Node node;
    std::string path;
    std::optional<connection_kind> kind;
  };

  static std::string child(const frame& fr, const key_spec& spec) {
    return fr.path.empty() ? std::string(spec.name) : fr.path + "." + std::string(spec.name);
  }

  static std::string text_of(const YAML::Node& node) {
    return node.IsScalar() ? "\"" + node.Scalar() + "\"" : (node.IsNull() ? "null" : "a map or list");
  }

  void fail(const frame& fr, const key_spec& spec, const std::string& what) {
    failures_.push_back(child(fr, spec) + ": " + what);
  }

  // Whether to look further: the key applies here and the example shows it (or leaves it out on purpose).
  bool present(const frame& fr, const key_spec& spec, const YAML::Node& node) {
    if (fr.kind && !spec.applies_to(*fr.kind)) {
      return false;
    }
    const bool shown = node.IsDefined();
    if (spec.example == in_example::absent) {
      if (shown) {
        fail(fr, spec, "is in the example, but the table says it is left out on purpose");
      }
      return false;
    }
    if (!shown) {
      fail(fr, spec, "missing from the example (add it with its default, or mark the row in_example::absent)");
    }
    return shown;
  }

  std::vector<frame> frames_;
  std::vector<std::string> failures_;
};

std::vector<std::string> check_example(const std::string& text) {
  example_checker checker(YAML::Load(text));
  const config prototype;
  schema::visit(checker, prototype);
  return checker.failures();
}

std::string example_text() {
  return rtm::test::read_file(rtm::test::env_path("RTM_SOURCE_ROOT") + "/config/rtm-bridge.example.yaml");
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("the example config shows every key of the schema, with the table's default") {
  const std::vector<std::string> failures = check_example(example_text());
  for (const std::string& f : failures) {
    FAIL_CHECK("config/rtm-bridge.example.yaml: " << f);
  }
  CHECK(failures.empty());
}

TEST_CASE("the example check notices a missing key, another default and a missing kind") {
  const std::string example = example_text();
  const auto has = [](const std::vector<std::string>& failures, const std::string& fragment) {
    INFO("failures: " << failures.size());
    for (const std::string& f : failures) {
      INFO(f);
      if (f.find(fragment) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  CHECK(has(check_example(replaced(example, "  shutdown_timeout: 30s\n", "  shutdown_timeout: 20s\n")),
            "kafka.shutdown_timeout: shows \"20s\", the table's default is 30s"));
  CHECK(has(check_example(replaced(example, "    tier: user", "    # tier: user")),
            "connections[0].tier: missing from the example"));
  CHECK(has(
      check_example(replaced(example, "  - name: slack-main\n    kind: slack", "  - name: slack-main\n    kind: acme")),
      "connections: no item of kind slack"));
  CHECK(has(check_example(replaced(example, "    team_id: null             # slack", "    team_id: T1 # slack")),
            "connections[1].team_id: shows \"T1\", but the key has no default"));
  CHECK(has(check_example(replaced(example, "  segment_size: 64MiB", "  segment_size: 32MiB")),
            "spool.segment_size: shows \"32MiB\", the table's default is 64MiB"));
  CHECK(has(check_example(replaced(example, "  when_full: drop_newest", "  # when_full: drop_newest")),
            "spool.when_full: missing from the example"));
}

namespace {

// The rows of one section that the example shows with another value than their default, on purpose.
class shown_otherwise {
 public:
  std::vector<std::string> names;
  template <class T, class... Shown>
  void key(const T& /*member*/, const key_spec& spec, const Shown&... /*shown*/) {
    if (spec.example == in_example::shows_other_value) {
      names.emplace_back(spec.name);
    }
  }
  template <class S>
  void section(const S& /*member*/, const key_spec& /*spec*/) {}
  template <class T, class... Shown>
  void list(const T& /*items*/, const key_spec& /*spec*/, const Shown&... /*shown*/) {}
  template <class Values, class Secrets>
  void properties(const Values& /*values*/, const Secrets& /*secrets*/, const key_spec& /*spec*/) {}
};

}  // namespace

// The contract: "the example config puts the spool at /var/lib/rtm-bridge/spool" (the unit's StateDirectory=), while
// the default is no spool. That one key is marked in its row; every other spool key shows its default.
TEST_CASE("the example turns the spool on at /var/lib/rtm-bridge/spool, its one deviation from the spool defaults") {
  const YAML::Node example = YAML::Load(example_text());
  REQUIRE(example["spool"]["path"].IsScalar());
  CHECK(example["spool"]["path"].Scalar() == "/var/lib/rtm-bridge/spool");
  shown_otherwise rows;
  const spool_config prototype;
  schema::visit(rows, prototype);
  CHECK(rows.names == std::vector<std::string>{"path"});
  CHECK_FALSE(prototype.enabled());  // the default: off
}

TEST_CASE("docs/config.md is what the schema tables generate") {
  const std::string path = rtm::test::env_path("RTM_SOURCE_ROOT") + "/docs/config.md";
  const std::string committed = rtm::test::read_file(path);
  const std::string generated = schema::reference_markdown();
  if (committed != generated) {
    FAIL_CHECK(path << " differs from what the schema tables (src/config/schema.hpp) generate: regenerate it with "
                       "`ninja -C build/test config-reference` (any build directory) and commit it");
  }
  // Every key of the tables is in it.
  for (const char* key : {"`brokers`", "`dead_letter_topic`", "`initial_delay`", "`max_event_size`", "`ca_file`",
                          "`listen`", "`format`", "`match`", "`team_id`", "`spool`", "`segment_size`", "`when_full`"}) {
    CHECK_MESSAGE(generated.find(key) != std::string::npos, key);
  }
}

TEST_CASE("a default-constructed section holds the table's defaults; a kind's own defaults come with the kind") {
  const connection_config acme;
  CHECK(acme.url.empty());  // acme: discovered over api_url
  CHECK(acme.api_url == default_acme_api_url);
  CHECK(acme.protocol == 4);
  const config cfg = load_string(R"(kafka:
  brokers: embedded
connections:
  - name: s1
    kind: slack
    key: {value: xoxb-1}
)",
                                 "test.yaml");
  CHECK(cfg.connections.at(0).url == default_slack_url);
  CHECK(std::string(to_string(connection_kind::slack)) == "slack");
  CHECK(schema::choice_name(schema::kind_choices, 42) == "unknown");
}
