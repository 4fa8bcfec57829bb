/*
 * The buffered file-descriptor sink (gitwal/io.h): pack and index writers
 * produce many pieces of a few bytes each; a write(2) apiece would cost
 * more than the copying. And the one loop that writes a whole buffer to a
 * descriptor (gw_write_all), for every writer of files.
 */
#include "gitwal/io.h"
#include "gitwal/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FD_SINK_BUFFER (256u << 10)

int gw_write_all(int fd, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* no progress and no reason: not to be retried forever */
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(gw_fd_sink *s, const unsigned char *p, size_t len)
{
	if (gw_write_all(s->fd, p, len) < 0)
		return gw_error_set_errno(GW_EIO, "cannot write %s", s->path);
	return 0;
}

int gw_fd_sink_flush(gw_fd_sink *s)
{
	int rc = write_all(s, s->buf, s->used);
	s->used = 0;
	return rc;
}

static int fd_sink_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_fd_sink *s = (gw_fd_sink *)sink;
	int rc;
	if (s->used + len > FD_SINK_BUFFER && (rc = gw_fd_sink_flush(s)) < 0)
		return rc;
	if (len >= FD_SINK_BUFFER)
		return write_all(s, buf, len);
	memcpy(s->buf + s->used, buf, len);
	s->used += len;
	return 0;
}

int gw_fd_sink_init(gw_fd_sink *s, int fd, const char *path)
{
	memset(s, 0, sizeof(*s));
	s->sink.write = fd_sink_write;
	s->fd = fd;
	s->path = path;
	if (!(s->buf = malloc(FD_SINK_BUFFER)))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

void gw_fd_sink_dispose(gw_fd_sink *s)
{
	free(s->buf);
	s->buf = NULL;
	s->used = 0;
}
