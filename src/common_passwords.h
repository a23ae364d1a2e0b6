/*
 * common_passwords: the passwords refused at registration and password
 * change because attackers try them first (issue: a leaked-list guess
 * succeeds before any rate limit matters).
 *
 * The list is data/common-passwords.txt (John the Ripper's password.lst,
 * public domain; see the file's header), compiled into the binary at build
 * time: every worker maps the same read-only pages, so it costs no private
 * memory, no file to find at start-up and no database query.
 */
#ifndef CHAT_COMMON_PASSWORDS_H
#define CHAT_COMMON_PASSWORDS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest entry the lookup compares; a longer password is never common. */
#define COMMON_PASSWORD_MAX 64

/* Is password[0..len) on the list, ignoring ASCII case?  Every entry of the
 * same length is compared in constant time, so the time taken depends on
 * the password's length only. */
bool common_password(const char *password, size_t len);

/* Entries on the list (for tests and the documentation's figures). */
size_t common_passwords_count(void);

#endif
