/*
 * privdrop.h - `user =` / `group =`: give up root once the sockets are bound.
 */
#ifndef LB_PRIVDROP_H
#define LB_PRIVDROP_H

/*
 * Switches the process (every thread: glibc applies set*id to all) to
 * <user> and <group>, names or numeric ids. A NULL <group> means the
 * user's primary group; supplementary groups become the user's own
 * (initgroups). Both NULL: nothing to do. Main thread, after binding and
 * before threads that create files start. Returns 0 or -errno with the
 * reason logged; ringlb must not run on when it fails.
 */
int privdrop_apply(const char *user, const char *group);

#endif
