/*
 * version.h - the one place the version of ringlb is written.
 */
#ifndef LB_VERSION_H
#define LB_VERSION_H

#define RINGLB_VERSION "0.1.0"

#endif
