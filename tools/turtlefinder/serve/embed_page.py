#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Writes a C++ source defining turtlefinder::serve::live_page() as the bytes
of the given file (as a byte array: no delimiter or length limit of string
literals to mind)."""
import sys


def main(source: str, target: str) -> None:
    with open(source, 'rb') as f:
        data = f.read()
    lines = []
    for i in range(0, len(data), 20):
        lines.append('    ' + ' '.join(f'{b:#04x},' for b in data[i:i + 20]))
    with open(target, 'w', encoding='ascii') as out:
        out.write('// Generated from page.html by embed_page.py: do not edit.\n')
        out.write('#include "page.hpp"\n\n')
        out.write('namespace turtlefinder::serve {\n\nnamespace {\n')
        out.write('constexpr unsigned char page[] = {\n' + '\n'.join(lines) + '\n    0};\n')
        out.write('} // namespace\n\n')
        out.write('std::string_view live_page() { return {reinterpret_cast<const char *>(page), sizeof page - 1}; }\n\n')
        out.write('} // namespace turtlefinder::serve\n')


if __name__ == '__main__':
    if len(sys.argv) != 3:
        sys.exit('usage: embed_page.py PAGE.html OUT.cpp')
    main(sys.argv[1], sys.argv[2])
