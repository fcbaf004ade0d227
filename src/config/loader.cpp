#include "config/loader.hpp"

#include <sys/stat.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <utility>
#include <variant>

#include "config/file.hpp"
#include "config/schema_reader.hpp"
#include "config/yaml_reader.hpp"
#include "util/log.hpp"

// Loading a file: reading it (bounded), parsing the YAML (one document), then the schema walk
// (config/schema_reader.cpp), which records every problem instead of throwing, so a file's every problem is
// reported in one run.
namespace rtm::config {

std::string problem::format() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line) + ":" + std::to_string(column);
  }
  out += ": ";
  if (!key_path.empty()) {
    out += key_path;
    out += ": ";
  }
  out += message;
  return out;
}

namespace {

std::string join_problems(const std::vector<problem>& problems) {
  std::string text;
  for (const problem& p : problems) {
    if (!text.empty()) {
      text += '\n';
    }
    text += p.format();
  }
  return text;
}

}  // namespace

load_error::load_error(std::vector<problem> problems)
    : std::runtime_error(join_problems(problems)), problems_(std::move(problems)) {}

namespace {

// yaml-cpp 0.7's LoadAll() never returns on some malformed files (a stray ',' at the top, e.g. ", x\n- "): its parser
// reports an empty document again and again without consuming anything, and LoadAll() keeps each one until memory
// runs out (jbeder/yaml-cpp#1319, fixed in 0.8.0). Found by tests/fuzz/config_loader. A first pass that keeps nothing
// counts the documents and gives up past a bound no real config file reaches.
class document_counter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& /*mark*/) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnAlias(const YAML::Mark& /*mark*/, YAML::anchor_t /*anchor*/) override {}
  void OnScalar(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                const std::string& /*value*/) override {}
  void OnSequenceStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                       YAML::EmitterStyle::value /*style*/) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& /*mark*/, const std::string& /*tag*/, YAML::anchor_t /*anchor*/,
                  YAML::EmitterStyle::value /*style*/) override {}
  void OnMapEnd() override {}
};

constexpr std::size_t max_yaml_documents = 64;

// Throws what LoadAll() would throw for a syntax error.
bool too_many_documents(const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  document_counter counter;
  std::size_t documents = 0;
  while (parser.HandleNextDocument(counter)) {
    if (++documents > max_yaml_documents) {
      return true;
    }
  }
  return false;
}

using detail::field;
using detail::problem_list;

constexpr std::size_t max_config_bytes = std::size_t{4} * 1024 * 1024;

struct loaded {
  config cfg;
  bool inline_secret = false;
};

loaded load_text(std::string_view yaml, const std::string& path) {
  problem_list out(path);
  std::vector<YAML::Node> documents;
  try {
    const std::string text(yaml);
    if (too_many_documents(text)) {
      out.add_unplaced("", "YAML syntax error: more than " + std::to_string(max_yaml_documents) +
                               " documents, or a stray ',' or '-' at the top level that the parser cannot get past");
      throw load_error(out.take());
    }
    documents = YAML::LoadAll(text);
  } catch (const YAML::DeepRecursion& e) {
    out.add(e.mark, "", "YAML nesting is too deep (more than " + std::to_string(e.depth()) + " levels)");
    throw load_error(out.take());
  } catch (const YAML::Exception& e) {
    // A syntax error: the tree is unusable, so this is the one problem reported.
    out.add(e.mark, "", "YAML syntax error: " + e.msg);
    throw load_error(out.take());
  }

  if (documents.empty() || (documents.size() == 1 && documents.front().IsNull())) {
    out.add_unplaced("", "the file is empty: expected a map with at least kafka.brokers and connections");
    throw load_error(out.take());
  }
  if (documents.size() > 1) {
    out.add(documents[1].Mark(), "",
            "the file holds " + std::to_string(documents.size()) + " YAML documents ('---'): expected one");
  }

  loaded result;
  result.cfg.path = path;
  problem_list schema_out(path);
  try {
    result.inline_secret =
        detail::read_document(field{documents.front(), documents.front().Mark(), ""}, result.cfg, schema_out);
  } catch (const YAML::Exception& e) {
    // The reader never converts with as<>(), so this is a yaml-cpp surprise; still a message, never a crash.
    schema_out.add(e.mark, "", std::string("unexpected YAML error: ") + e.what());
  }
  std::vector<problem> problems = out.take();
  std::vector<problem> schema_problems = schema_out.take();
  problems.insert(problems.end(), std::make_move_iterator(schema_problems.begin()),
                  std::make_move_iterator(schema_problems.end()));
  if (!problems.empty()) {
    throw load_error(std::move(problems));
  }
  return result;
}

}  // namespace

config load_string(std::string_view yaml, const std::string& path) {
  return load_text(yaml, path).cfg;
}

config load_file(const std::string& path) {
  file_result read = read_small_file(path, max_config_bytes);
  if (const auto* error = std::get_if<std::string>(&read)) {
    throw load_error({problem{path, 0, 0, "", "cannot read the config file: " + *error}});
  }
  const file_content& file = std::get<file_content>(read);
  loaded result = load_text(file.data, path);
  if (result.inline_secret && (file.mode & (S_IRGRP | S_IROTH)) != 0) {
    log::warn("", "config ", path, " holds inline secrets ({value: ...} or a password property) and is readable by ",
              (file.mode & S_IROTH) != 0 ? "everyone" : "its group", ": chmod 600 it, or use {env: NAME}, ",
              "{file: PATH} or {credential: NAME}");
  }
  return std::move(result.cfg);
}

}  // namespace rtm::config
