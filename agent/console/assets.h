/*
 * assets.h — the console's stylesheet and script, served from the binary
 * at /static/console.css and /static/console.js. Their text is in
 * static/; make turns each file into a NUL-ended array (console_assets.c
 * in the build's gen/ folder), so the binary needs no files at run time.
 * The script only checks an NHS number as it is typed: the agent and the
 * broker check it again.
 */
#ifndef EHX_CONSOLE_ASSETS_H
#define EHX_CONSOLE_ASSETS_H

extern const char console_css[];
extern const char console_js[];

#endif
