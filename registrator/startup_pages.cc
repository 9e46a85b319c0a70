// Start-up runs code from all over the binary -- flag parsing, OpenSSL and libcurl
// initialisation, the first sync -- and the kernel maps every page it touches plus its neighbours
// (fault-around, large page-cache folios), so a static binary would otherwise keep most of its
// code resident for life although the idle loop runs a small part of it (measured with
// bench/delivery.sh: 4.5 MB of the 5.2 MB text resident at idle before, under 1 MB after).
#include "registrator/startup_pages.h"

#include <link.h>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace registrator {

void ReleaseStartupPages() {
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void*) -> int {
        const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& phdr = info->dlpi_phdr[i];
          // Only segments mapped without write permission: their pages are never dirty, so
          // MADV_DONTNEED only drops mappings. RELRO data lies in a writable PT_LOAD (it is
          // made read-only after relocation) and is skipped with it.
          if (phdr.p_type != PT_LOAD || (phdr.p_flags & PF_W) != 0) continue;
          const uintptr_t start = (info->dlpi_addr + phdr.p_vaddr) & ~(page - 1);
          const uintptr_t end = info->dlpi_addr + phdr.p_vaddr + phdr.p_memsz;
          madvise(reinterpret_cast<void*>(start), end - start, MADV_DONTNEED);
        }
        return 1;  // The first object is the executable; shared libraries are left alone.
      },
      nullptr);
  malloc_trim(0);
}

}  // namespace registrator
