#include "config/secret.hpp"

#include <cstdlib>
#include <variant>

#include "config/file.hpp"

namespace rtm::config {
namespace {

bool is_env_name(std::string_view name) noexcept {
  if (name.empty() || (name.front() >= '0' && name.front() <= '9')) {
    return false;
  }
  for (const char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::optional<std::string> read_secret_file(secret& s, const std::string& path, const std::string& what) {
  file_result read = read_small_file(path, max_secret_bytes);
  if (const auto* error = std::get_if<std::string>(&read)) {
    return "cannot read " + what + ": " + *error;
  }
  const std::string_view text = strip_trailing_newlines(std::get<file_content>(read).data);
  if (text.empty()) {
    return what + " is empty";
  }
  s.value.assign(text);
  return std::nullopt;
}

}  // namespace

std::string secret::describe() const {
  switch (from) {
    case source::env:
      return "env:" + reference;
    case source::file:
      return "file:" + reference;
    case source::credential:
      return "credential:" + reference;
    case source::value:
      return "value:****";
  }
  return "unknown:****";
}

const char* secret_key(secret::source from) noexcept {
  switch (from) {
    case secret::source::env:
      return "env";
    case secret::source::file:
      return "file";
    case secret::source::credential:
      return "credential";
    case secret::source::value:
      return "value";
  }
  return "?";
}

std::optional<std::string> check_secret_reference(secret::source from, std::string_view reference) {
  switch (from) {
    case secret::source::env:
      if (!is_env_name(reference)) {
        return "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*), got \"" + std::string(reference) + "\"";
      }
      return std::nullopt;
    case secret::source::credential:
      // systemd credential names are plain file names inside $CREDENTIALS_DIRECTORY.
      if (reference.empty() || reference == "." || reference == ".." || reference.find('/') != std::string_view::npos) {
        return "expected a credential name (a file name without '/', as in LoadCredential=NAME:...), got \"" +
               std::string(reference) + "\"";
      }
      return std::nullopt;
    case secret::source::file:
      if (reference.empty()) {
        return std::string("expected a file path, got an empty string");
      }
      return std::nullopt;
    case secret::source::value:
      return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::string> resolve_secret(secret& s) {
  switch (s.from) {
    case secret::source::value:
      if (s.value.empty()) {
        return std::string("the secret value is empty");
      }
      return std::nullopt;
    case secret::source::env: {
      // The loader runs before any thread that could call setenv(), so getenv() here is race-free.
      const char* v = std::getenv(s.reference.c_str());  // NOLINT(concurrency-mt-unsafe)
      if (v == nullptr) {
        return "environment variable " + s.reference + " is not set";
      }
      if (*v == '\0') {
        return "environment variable " + s.reference + " is empty";
      }
      s.value = v;
      return std::nullopt;
    }
    case secret::source::file:
      return read_secret_file(s, s.reference, "secret file " + s.reference);
    case secret::source::credential: {
      const char* dir = std::getenv("CREDENTIALS_DIRECTORY");  // NOLINT(concurrency-mt-unsafe)
      if (dir == nullptr || *dir == '\0') {
        return "credential " + s.reference +
               ": $CREDENTIALS_DIRECTORY is not set (systemd sets it for a unit with LoadCredential=" + s.reference +
               ":PATH or SetCredential=; outside systemd use {file: PATH})";
      }
      const std::string path = std::string(dir) + "/" + s.reference;
      return read_secret_file(s, path, "credential " + s.reference + " (" + path + ")");
    }
  }
  return std::string("unknown secret source");
}

std::string_view strip_trailing_newlines(std::string_view text) noexcept {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

}  // namespace rtm::config
