// ReleaseStartupPages: gives back the resident memory only start-up needed, once the process is
// idle (see the .cc for why a static binary needs it).
#ifndef REGISTRATOR_STARTUP_PAGES_H_
#define REGISTRATOR_STARTUP_PAGES_H_

namespace registrator {

// Unmaps the resident pages of the executable's read-only segments (code, constants; they are
// clean file pages, mapped again from the page cache on next use) and returns malloc's free
// pages to the kernel. Safe to call at any time from any thread; writable and relocated data is
// never touched.
void ReleaseStartupPages();

}  // namespace registrator

#endif  // REGISTRATOR_STARTUP_PAGES_H_
