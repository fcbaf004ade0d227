// LD_PRELOAD heap-allocation counter for the daemon: counts malloc, calloc, realloc and the aligned variants (the
// C++ operator new of libstdc++ calls malloc, so it is counted there, once) per thread, and at process exit writes
// one line per thread to $RTM_BENCH_ALLOC_OUT: "<tid> <main 0|1> <allocations> <from librdkafka> <thread name>".
// "From librdkafka" = the allocator's immediate caller lies in librdkafka's code (its rd_malloc/rd_calloc/...), so a
// thread's allocations can be split between librdkafka and everything else (our code, libstdc++, Boost, libc).
//
// Threads: every thread owns one slot (claimed on its first allocation, found again through an initial-exec TLS
// pointer, so no allocation happens inside the hook); the slot's counter has a single writer. The thread name is
// re-read every 64 allocations because librdkafka names its threads after they have started allocating.
// The real allocator is reached through glibc's __libc_* entry points, which never recurse into these hooks.
//
// Finding the allocations themselves: with $RTM_BENCH_ALLOC_STACKS set to a path, every allocation the main (io)
// thread makes that is not librdkafka's also has its call stack taken (glibc backtrace(), unwinding by .eh_frame, so
// no frame pointers needed) and counted in a fixed table of distinct stacks; at exit each stack is written as
// "<count> <module>+0x<offset> ..." for scripts/alloc-stacks to symbolize. Nothing allocates inside the hook: the
// table is static, backtrace() is warmed up at load, and a re-entrancy flag passes nested calls straight through.
#include <dlfcn.h>
#include <execinfo.h>
#include <fcntl.h>
#include <link.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t n, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
}

namespace {

constexpr std::size_t max_slots = 8192;
constexpr std::uint64_t rename_every = 64;

struct slot {
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> from_rdkafka{0};
  std::atomic<int> tid{0};
  char name[17]{};
};

slot slots[max_slots];
std::atomic<std::size_t> slots_used{0};
slot overflow;
char out_path[4096];
std::uintptr_t rdkafka_begin = 0;  // librdkafka's executable segment, found once at load time
std::uintptr_t rdkafka_end = 0;

__attribute__((tls_model("initial-exec"))) thread_local slot* my_slot = nullptr;

constexpr int stack_depth = 24;
constexpr std::size_t max_stacks = 4096;

struct stack_entry {
  std::uint64_t count = 0;
  std::uint64_t hash = 0;
  int depth = 0;
  void* frames[stack_depth]{};
};

stack_entry stacks[max_stacks];  // open addressing by hash; written by the main thread only
std::uint64_t stacks_dropped = 0;
char stacks_path[4096];
int main_pid = 0;
__attribute__((tls_model("initial-exec"))) thread_local bool in_hook = false;

void record_stack() noexcept {
  void* frames[stack_depth + 2];
  const int n = ::backtrace(frames, stack_depth + 2);
  // Frames 0 and 1 are this function and the hook: drop them.
  const int depth = n > 2 ? n - 2 : 0;
  std::uint64_t hash = 1469598103934665603ULL;
  for (int i = 0; i < depth; ++i) {
    hash = (hash ^ reinterpret_cast<std::uintptr_t>(frames[i + 2])) * 1099511628211ULL;
  }
  for (std::size_t probe = 0; probe < max_stacks; ++probe) {
    stack_entry& e = stacks[(hash + probe) % max_stacks];
    if (e.count == 0) {
      e.hash = hash;
      e.depth = depth;
      std::memcpy(e.frames, frames + 2, sizeof(void*) * static_cast<std::size_t>(depth));
    } else if (e.hash != hash || e.depth != depth ||
               std::memcmp(e.frames, frames + 2, sizeof(void*) * static_cast<std::size_t>(depth)) != 0) {
      continue;
    }
    ++e.count;
    return;
  }
  ++stacks_dropped;
}

void refresh_name(slot* s) noexcept {
  char name[17]{};
  ::prctl(PR_GET_NAME, name, 0, 0, 0);
  std::memcpy(s->name, name, sizeof name);
}

__attribute__((always_inline)) inline void count(std::uintptr_t caller) noexcept {
  slot* s = my_slot;
  if (s == nullptr) {
    const std::size_t i = slots_used.fetch_add(1, std::memory_order_relaxed);
    s = i < max_slots ? &slots[i] : &overflow;
    s->tid.store(static_cast<int>(::syscall(SYS_gettid)), std::memory_order_relaxed);
    my_slot = s;
    refresh_name(s);
  }
  if (caller >= rdkafka_begin && caller < rdkafka_end) {
    s->from_rdkafka.fetch_add(1, std::memory_order_relaxed);
  } else if (stacks_path[0] != '\0' && !in_hook && s->tid.load(std::memory_order_relaxed) == main_pid) {
    in_hook = true;
    record_stack();
    in_hook = false;
  }
  const std::uint64_t n = s->count.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n % rename_every == 0 && s != &overflow) {
    refresh_name(s);
  }
}

void put(int fd, const char* text) noexcept {
  const std::size_t len = std::strlen(text);
  std::size_t done = 0;
  while (done < len) {
    const ssize_t w = ::write(fd, text + done, len - done);
    if (w <= 0) {
      return;
    }
    done += static_cast<std::size_t>(w);
  }
}

void put_number(int fd, std::uint64_t v) noexcept {
  char digits[24];
  int i = sizeof digits - 1;
  digits[i] = '\0';
  do {
    digits[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  put(fd, digits + i);
}

int find_rdkafka(dl_phdr_info* info, std::size_t, void*) {
  if (info->dlpi_name == nullptr || std::strstr(info->dlpi_name, "librdkafka.so") == nullptr) {
    return 0;
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) != 0) {
      rdkafka_begin = info->dlpi_addr + ph.p_vaddr;
      rdkafka_end = rdkafka_begin + ph.p_memsz;
      return 1;
    }
  }
  return 0;
}

__attribute__((constructor)) void capture_output_path() {
  // Every DT_NEEDED library is mapped before the first constructor runs.
  ::dl_iterate_phdr(find_rdkafka, nullptr);
  // Read once at start: the environment may change (or be freed) by the time the process exits.
  const char* path = std::getenv("RTM_BENCH_ALLOC_OUT");
  if (path != nullptr && std::strlen(path) < sizeof out_path) {
    std::strcpy(out_path, path);
  }
  main_pid = static_cast<int>(::getpid());
  const char* stacks_out = std::getenv("RTM_BENCH_ALLOC_STACKS");
  if (stacks_out != nullptr && std::strlen(stacks_out) < sizeof stacks_path) {
    // The first backtrace() loads libgcc_s (allocating): do it now, before any stack is recorded.
    void* warm[4];
    in_hook = true;
    ::backtrace(warm, 4);
    in_hook = false;
    std::strcpy(stacks_path, stacks_out);
  }
}

void put_hex(int fd, std::uintptr_t v) noexcept {
  char digits[24];
  int i = sizeof digits - 1;
  digits[i] = '\0';
  do {
    digits[--i] = "0123456789abcdef"[v % 16];
    v /= 16;
  } while (v != 0);
  put(fd, "0x");
  put(fd, digits + i);
}

void dump_stacks() {
  const int fd = ::open(stacks_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return;
  }
  in_hook = true;  // dladdr may allocate on first use: not an allocation to record
  for (const stack_entry& e : stacks) {
    if (e.count == 0) {
      continue;
    }
    put_number(fd, e.count);
    for (int i = 0; i < e.depth; ++i) {
      Dl_info info{};
      const auto address = reinterpret_cast<std::uintptr_t>(e.frames[i]);
      put(fd, " ");
      if (::dladdr(e.frames[i], &info) != 0 && info.dli_fname != nullptr) {
        put(fd, info.dli_fname);
        put(fd, "+");
        // A return address points after the call: step back one byte so the line found is the call's.
        put_hex(fd, address - 1 - reinterpret_cast<std::uintptr_t>(info.dli_fbase));
      } else {
        put_hex(fd, address);
      }
    }
    put(fd, "\n");
  }
  if (stacks_dropped != 0) {
    put_number(fd, stacks_dropped);
    put(fd, " (stacks beyond the table)\n");
  }
  ::close(fd);
}

__attribute__((destructor)) void dump() {
  if (stacks_path[0] != '\0') {
    dump_stacks();
  }
  if (out_path[0] == '\0') {
    return;
  }
  const int fd = ::open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return;
  }
  const int pid = static_cast<int>(::getpid());
  const std::size_t used = std::min(slots_used.load(), max_slots);
  for (std::size_t i = 0; i <= used; ++i) {
    slot& s = i < used ? slots[i] : overflow;
    if (i == used && s.count.load() == 0) {
      break;
    }
    put_number(fd, static_cast<std::uint64_t>(s.tid.load()));
    put(fd, s.tid.load() == pid ? " 1 " : " 0 ");
    put_number(fd, s.count.load());
    put(fd, " ");
    put_number(fd, s.from_rdkafka.load());
    put(fd, " ");
    put(fd, i < used ? s.name : "(overflow)");
    put(fd, "\n");
  }
  ::close(fd);
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return __libc_malloc(size);
}

void* calloc(std::size_t n, std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return __libc_calloc(n, size);
}

void* realloc(void* p, std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return __libc_realloc(p, size);
}

void* memalign(std::size_t alignment, std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  count(reinterpret_cast<std::uintptr_t>(__builtin_return_address(0)));
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) {
    return ENOMEM;
  }
  *out = p;
  return 0;
}

}  // extern "C"
