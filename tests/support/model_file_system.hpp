#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "spool/file_system.hpp"

// A model of a disk for the spool's tests (after Vector's tests/model/filesystem.rs): it remembers, per file, what
// the last fdatasync made durable and, per directory, which entries the last directory fsync made durable. A
// power_loss() then keeps only what a real disk must keep (plus, at random, part of what it may have written back
// on its own) and tears the last sector of what it keeps beyond the synced part. It also runs out of space at a
// configurable capacity, and fails fdatasync or writes on request. Thread-safe (one mutex): the spool syncs from
// its own thread.
namespace rtm::test {

class model_file_system final : public spool::file_system {
 public:
  struct node {
    std::string data;     // what reads see
    std::string durable;  // what the last sync_data made durable
    std::uint64_t reserved = 0;
  };

  // Total bytes the "disk" holds (files' data or reservation, whichever is larger).
  std::uint64_t capacity = std::uint64_t{1} << 40U;
  // When set, the next sync_data fails with EIO (and every later one: a failed fsync is not retried anyway).
  bool fail_sync = false;
  // When set, writes fail with EIO.
  bool fail_write = false;
  std::uint64_t syncs = 0;
  // Bytes read_at returned, over every file: lets a test bound the work a reader does (a resync must not re-read).
  std::uint64_t bytes_read = 0;

  class model_file final : public spool::file {
   public:
    model_file(model_file_system& fs, std::shared_ptr<node> n, bool writable)
        : fs_(fs), n_(std::move(n)), writable_(writable) {}
    std::error_code write_at(std::uint64_t offset, const char* data, std::size_t size) override {
      const std::lock_guard lock(fs_.mutex_);
      if (!writable_) {
        return std::make_error_code(std::errc::bad_file_descriptor);
      }
      if (fs_.fail_write) {
        return std::make_error_code(std::errc::io_error);
      }
      const std::uint64_t end = offset + size;
      if (end > std::max<std::uint64_t>(n_->data.size(), n_->reserved)) {
        const std::uint64_t grow = end - std::max<std::uint64_t>(n_->data.size(), n_->reserved);
        if (fs_.used_locked() + grow > fs_.capacity) {
          return std::make_error_code(std::errc::no_space_on_device);
        }
      }
      if (n_->data.size() < end) {
        n_->data.resize(end, '\0');
      }
      std::copy(data, data + size, n_->data.begin() + static_cast<std::ptrdiff_t>(offset));
      return {};
    }
    std::error_code read_at(std::uint64_t offset, char* data, std::size_t size, std::size_t& got) override {
      const std::lock_guard lock(fs_.mutex_);
      got = 0;
      if (offset >= n_->data.size()) {
        return {};
      }
      got = std::min<std::size_t>(size, n_->data.size() - offset);
      fs_.bytes_read += got;
      std::copy_n(n_->data.begin() + static_cast<std::ptrdiff_t>(offset), got, data);
      return {};
    }
    std::error_code sync_data() override {
      const std::lock_guard lock(fs_.mutex_);
      ++fs_.syncs;
      if (fs_.fail_sync) {
        return std::make_error_code(std::errc::io_error);
      }
      n_->durable = n_->data;
      return {};
    }
    std::error_code reserve(std::uint64_t size) override {
      const std::lock_guard lock(fs_.mutex_);
      if (size > std::max<std::uint64_t>(n_->data.size(), n_->reserved) &&
          fs_.used_locked() + size - std::max<std::uint64_t>(n_->data.size(), n_->reserved) > fs_.capacity) {
        return std::make_error_code(std::errc::no_space_on_device);
      }
      n_->reserved = std::max(n_->reserved, size);
      return {};
    }
    std::error_code truncate(std::uint64_t size) override {
      const std::lock_guard lock(fs_.mutex_);
      n_->data.resize(size, '\0');
      // Truncation is metadata, which ext4's journal commits on its own: modelled as durable at once.
      if (n_->durable.size() > size) {
        n_->durable.resize(size);
      }
      n_->reserved = std::min<std::uint64_t>(n_->reserved, size);  // like ext4: blocks past EOF are freed
      return {};
    }
    std::error_code size(std::uint64_t& out) override {
      const std::lock_guard lock(fs_.mutex_);
      out = n_->data.size();
      return {};
    }

   private:
    model_file_system& fs_;
    std::shared_ptr<node> n_;
    bool writable_;
  };

  std::error_code open(const std::string& path, spool::open_mode mode, std::shared_ptr<spool::file>& out) override {
    const std::lock_guard lock(mutex_);
    auto it = entries_.find(path);
    if (mode == spool::open_mode::create_new && it != entries_.end()) {
      return std::make_error_code(std::errc::file_exists);
    }
    if (it == entries_.end()) {
      if (mode == spool::open_mode::read_only || mode == spool::open_mode::read_write) {
        return std::make_error_code(std::errc::no_such_file_or_directory);
      }
      it = entries_.emplace(path, std::make_shared<node>()).first;
    }
    out = std::make_shared<model_file>(*this, it->second, mode != spool::open_mode::read_only);
    return {};
  }
  std::error_code remove(const std::string& path) override {
    const std::lock_guard lock(mutex_);
    return entries_.erase(path) > 0 ? std::error_code{} : std::make_error_code(std::errc::no_such_file_or_directory);
  }
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    const std::lock_guard lock(mutex_);
    names.clear();
    const std::string prefix = dir + "/";
    for (const auto& [path, n] : entries_) {
      if (path.rfind(prefix, 0) == 0 && path.find('/', prefix.size()) == std::string::npos) {
        names.push_back(path.substr(prefix.size()));
      }
    }
    return {};
  }
  std::error_code sync_directory(const std::string& /*dir*/) override {
    const std::lock_guard lock(mutex_);
    durable_entries_ = entries_;
    return {};
  }
  std::error_code free_space(const std::string& /*dir*/, std::uint64_t& out) override {
    const std::lock_guard lock(mutex_);
    const std::uint64_t used = used_locked();
    out = used >= capacity ? 0 : capacity - used;
    return {};
  }
  std::error_code create_directories(const std::string& /*dir*/) override { return {}; }

  // The power goes out: what survives is the synced state, plus (at random) a prefix of what was written since,
  // whose last 512-byte sector is torn (garbage) when the prefix reaches past the synced part. Entries not made
  // durable by a directory fsync survive at random (the journal may have committed them).
  void power_loss(std::mt19937_64& rng) {
    const std::lock_guard lock(mutex_);
    std::map<std::string, std::shared_ptr<node>> survivors;
    for (const auto& [path, n] : entries_) {
      if (durable_entries_.count(path) == 0 && (rng() % 2) == 0) {
        continue;
      }
      survivors.emplace(path, n);
    }
    for (auto& [path, n] : survivors) {
      std::string kept = n->durable;
      if (n->data.size() > kept.size() && n->data.compare(0, kept.size(), kept) == 0) {
        const std::size_t extra = rng() % (n->data.size() - kept.size() + 1);
        kept.append(n->data, kept.size(), extra);
        if (extra > 0) {
          const std::size_t sector_start = (kept.size() - 1) / 512 * 512;
          for (std::size_t i = std::max(sector_start, n->durable.size()); i < kept.size(); ++i) {
            if (rng() % 3 == 0) {
              kept[i] = static_cast<char>(rng());
            }
          }
        }
      }
      auto fresh = std::make_shared<node>();
      fresh->data = kept;
      fresh->durable = kept;
      n = fresh;
    }
    entries_ = survivors;
    durable_entries_ = survivors;
  }

  // The counters and switches above, under the lock: for a test whose spool's sync thread runs meanwhile.
  [[nodiscard]] std::uint64_t sync_count() {
    const std::lock_guard lock(mutex_);
    return syncs;
  }
  void set_fail_sync(bool on) {
    const std::lock_guard lock(mutex_);
    fail_sync = on;
  }

  // Flips a byte of a file (corruption tests).
  void corrupt(const std::string& path, std::size_t offset) {
    const std::lock_guard lock(mutex_);
    auto& d = entries_.at(path)->data;
    d.at(offset) = static_cast<char>(d.at(offset) ^ 0x5A);
  }
  [[nodiscard]] std::vector<std::string> paths() {
    const std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [path, n] : entries_) {
      out.push_back(path);
    }
    return out;
  }
  [[nodiscard]] std::uint64_t used() {
    const std::lock_guard lock(mutex_);
    return used_locked();
  }

 private:
  std::uint64_t used_locked() const {
    std::uint64_t total = 0;
    for (const auto& [path, n] : entries_) {
      total += std::max<std::uint64_t>(n->data.size(), n->reserved);
    }
    return total;
  }

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<node>> entries_;
  std::map<std::string, std::shared_ptr<node>> durable_entries_;
};

}  // namespace rtm::test
