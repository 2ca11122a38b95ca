// SPDX-License-Identifier: GPL-2.0
/*
 * noop - the program the execve loop runs: exits at once, so an iteration
 * costs fork + execve + exit + wait and little else, and the hook's share of
 * it is as visible as it gets.
 */
int main(void)
{
	return 0;
}
