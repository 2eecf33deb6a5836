/* peakrss.c: runs a command and reports its peak memory, the same way for
 * every tool the benchmark suite compares (kiln's executables, ort_bench,
 * python).
 *
 *   peakrss CMD ARGS...
 *
 * CMD (found on PATH) inherits stdin, stdout and stderr, so its output
 * passes through untouched.  When it ends, peakrss prints one line to
 * stderr, `peakrss: N KiB`, N being the ru_maxrss that wait4 reports for
 * it (Linux counts it in KiB; it is the largest of the child and of any
 * process it waited for), and exits with the child's status: its exit
 * code, or 128 + the signal that killed it, as a shell would.  If CMD
 * cannot be run at all, peakrss says why and exits 127 without a
 * peakrss line, as there was no process to measure.
 */
#define _DEFAULT_SOURCE  /* wait4 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child's side: exec cmd, or send errno up the pipe, which
 * close-on-exec shuts unread when the exec works. */
static void
child(char **cmd, int fd)
{
	int err;

	execvp(cmd[0], cmd);
	err = errno;
	if (write(fd, &err, sizeof err) != sizeof err)
		_exit(126);
	_exit(127);
}

/* The errno of a failed exec, or 0 once the pipe closes. */
static int
exec_error(int fd)
{
	int err = 0;
	ssize_t r;

	do
		r = read(fd, &err, sizeof err);
	while (r < 0 && errno == EINTR);
	return r == sizeof err ? err : 0;
}

int
main(int argc, char **argv)
{
	struct rusage ru;
	int fd[2], status, err;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: peakrss CMD ARGS...\n");
		return 2;
	}
	if (pipe(fd) || fcntl(fd[1], F_SETFD, FD_CLOEXEC)) {
		perror("peakrss: pipe");
		return 2;
	}
	pid = fork();
	if (pid < 0) {
		perror("peakrss: fork");
		return 2;
	}
	if (pid == 0) {
		close(fd[0]);
		child(argv + 1, fd[1]);
	}
	close(fd[1]);
	err = exec_error(fd[0]);
	close(fd[0]);
	while (wait4(pid, &status, 0, &ru) < 0)
		if (errno != EINTR) {
			perror("peakrss: wait4");
			return 2;
		}
	if (err) {
		fprintf(stderr, "peakrss: cannot run '%s': %s\n", argv[1],
		        strerror(err));
		return 127;
	}
	fprintf(stderr, "peakrss: %ld KiB\n", ru.ru_maxrss);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
