// SPDX-License-Identifier: GPL-2.0
/*
 * mm-seqid-exit: the smallest program that execve() can load: static, no
 * libc, one page of text, exit(0) at once.  scripts/bench builds it
 * (gcc -static -nostdlib) and mm-seqid-bench --exec=PATH copies it to a
 * tmpfs, so that an exec under -icount counts the kernel's work, not 9p
 * reads of a large binary from the host.
 */
void _start(void)
{
	asm volatile("syscall" : : "a"(60), "D"(0) : "rcx", "r11", "memory");
	__builtin_unreachable();
}
