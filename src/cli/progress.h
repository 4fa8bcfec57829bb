/*
 * The progress display of long commands (backup, restore, audit): one line
 * on stderr, "gitwal CMD: 3/10 repositories, 1.2 GB, 45.0 MB/s, 42s left",
 * drawn by a thread of its own from the operation's gw_progress_counters
 * and the store's byte count (gw_store_traffic).
 *
 * On a terminal the line is rewritten in place (carriage return, then
 * spaces over what is left of the previous one) at most ten times a second,
 * and erased when the command ends, so the display never stays in the
 * output. Without a terminal nothing is shown, unless --progress asks for
 * it: then one plain line at most once a second (and one at the end), which
 * a log keeps readably. --quiet shows nothing; the last of the two given
 * wins. Nothing else a command prints changes: stdout stays as it is.
 */
#ifndef GITWAL_CLI_PROGRESS_H
#define GITWAL_CLI_PROGRESS_H

#include "cli/options.h"
#include "gitwal/progress.h"
#include "gitwal/store.h"

typedef enum {
	GW_PROGRESS_AUTO = 0, /* on a terminal only */
	GW_PROGRESS_QUIET,    /* --quiet: never */
	GW_PROGRESS_FORCE,    /* --progress: also without a terminal (plain lines) */
} gw_progress_mode;

typedef struct gw_progress gw_progress;

/*
 * --progress and --quiet, for a command's table: they set the int field F of
 * its options struct T to a gw_progress_mode. EXTRA is more of --quiet's
 * help ("" or "\nmore lines").
 */
#define GW_PROGRESS_OPTIONS(T, F, EXTRA)                                                                \
	{.type = GW_OPT_FLAG, .name = "progress", .offset = offsetof(T, F), .ival = GW_PROGRESS_FORCE,  \
	 .help = "show progress on stderr even when it is not a terminal (a plain\n"                  \
		 "line a second). On a terminal it is shown anyway: repositories\n"                   \
		 "(or records) done of all, bytes, rate and time left, one line\n"                    \
		 "redrawn at most ten times a second and erased at the end"},                          \
	{.type = GW_OPT_FLAG, .name = "quiet", .offset = offsetof(T, F), .ival = GW_PROGRESS_QUIET,    \
	 .help = "show no progress (what goes to stdout is unchanged); the last\n"                    \
		 "of --progress and --quiet wins" EXTRA}

/*
 * Start showing the progress of command cmd ("backup"), counted in counters
 * (which must outlive the display) and the store's traffic; NULL when
 * nothing is to be shown (the mode and stderr say so, or it could not
 * start). Every function here takes NULL and does nothing with it.
 */
gw_progress *gw_progress_start(const char *cmd, gw_progress_mode mode, gw_store *store,
			       gw_progress_counters *counters);
/*
 * Before writing anything to stdout or stderr while the display runs: erases
 * the line and keeps it away until gw_progress_release (the next redraw is
 * at the next tick, so output never raises the rate of redraws).
 */
void gw_progress_hold(gw_progress *p);
void gw_progress_release(gw_progress *p);
/* Stop: erase the line (on a terminal) or print the last one (without), and free. */
void gw_progress_stop(gw_progress *p);

#endif
