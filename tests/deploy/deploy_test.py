#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What can be checked of the deployment files without a cluster or a running
systemd: the DaemonSet is valid YAML of the expected shape (host PID, the
host's /proc and /run read-only, the procfs root pointing at the /proc mount,
a Prometheus scrape annotation on the port it listens on, resource limits,
the capabilities the Finder needs) and its command uses only commands and
flags the CLI accepts; the systemd units pass `systemd-analyze verify` (which
needs no running systemd) with the service starting the built CLI, the
service's sandbox allows the socket families it opens, and the socket is the
documented one."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print('FAIL:', what, file=sys.stderr)


def cli_grammar(cli):
    """Commands and flags `turtlefinder --help` (and `serve --help`) names,
    and which flags take a value (shown with a VALUE placeholder)."""
    texts = []
    for args in ([cli, '--help'], [cli, 'serve', '--help']):
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            texts.append(r.stdout)
    check(texts, 'turtlefinder --help failed')
    text = '\n'.join(texts)
    commands = set()
    in_commands = False
    for line in text.splitlines():
        if re.match(r'^\S.*:$', line):
            in_commands = line.lower().startswith('commands')
            continue
        m = re.match(r'^  ([a-z][a-z-]*)\s', line)
        if in_commands and m:
            commands.add(m.group(1))
    flags = set(re.findall(r'(--[a-z][a-z0-9-]*)', text))
    valued = set(re.findall(r'(--[a-z][a-z0-9-]*)[ =]\[?[A-Z]', text))
    return commands, flags, valued


def check_command(argv, grammar, where):
    commands, flags, valued = grammar
    values = {}
    i = 0
    seen_command = None
    while i < len(argv):
        arg = argv[i]
        if arg.startswith('--'):
            name, eq, value = arg.partition('=')
            check(name in flags, f'{where}: flag {name} is not in turtlefinder --help')
            if name in valued and not eq:
                i += 1
                check(i < len(argv), f'{where}: {name} needs a value')
                value = argv[i] if i < len(argv) else ''
            values[name] = value
        else:
            check(seen_command is None, f'{where}: a second command {arg}')
            check(arg in commands, f'{where}: command {arg} is not in turtlefinder --help')
            seen_command = arg
        i += 1
    return seen_command, values


def check_daemonset(path, grammar):
    with open(path, encoding='utf-8') as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    sets = [d for d in docs if d.get('kind') == 'DaemonSet']
    check(len(sets) == 1, f'{path}: one DaemonSet expected, found {len(sets)}')
    if not sets:
        return
    ds = sets[0]
    check(ds.get('apiVersion') == 'apps/v1', 'DaemonSet apiVersion is apps/v1')
    spec = ds['spec']
    template = spec['template']
    labels = template['metadata'].get('labels', {})
    for k, v in spec['selector']['matchLabels'].items():
        check(labels.get(k) == v, f'the selector matches the pod template label {k}')
    pod = template['spec']
    check(pod.get('hostPID') is True, 'hostPID: true')
    volumes = {v['name']: v for v in pod.get('volumes', [])}
    containers = pod['containers']
    check(len(containers) == 1, 'one container')
    c = containers[0]
    mounts = {m['name']: m for m in c.get('volumeMounts', [])}
    host_mounts = {}
    for name, v in volumes.items():
        host = v.get('hostPath', {}).get('path')
        if host:
            check(name in mounts, f'hostPath volume {name} is mounted')
            check(mounts.get(name, {}).get('readOnly') is True, f'host {host} is mounted read-only')
            host_mounts[host] = mounts.get(name, {}).get('mountPath')
    check('/proc' in host_mounts, "the host's /proc is mounted")
    check('/run' in host_mounts, "the host's /run is mounted")

    argv = list(c.get('command', [])) + list(c.get('args', []))
    check(argv and os.path.basename(argv[0]) == 'turtlefinder', 'the container runs turtlefinder')
    command, values = check_command(argv[1:], grammar, 'DaemonSet')
    check(command == 'serve', 'the container runs `turtlefinder serve`')
    check(values.get('--procfs-root') == host_mounts.get('/proc'),
          "--procfs-root is where the host's /proc is mounted")
    listen = values.get('--listen', '')
    m = re.match(r'^(.*):(\d+)$', listen)
    check(m is not None, f'--listen ADDR:PORT, got {listen!r}')
    port = int(m.group(2)) if m else None
    if m and m.group(1).startswith('$('):  # Kubernetes expands $(VAR) from the container's env
        var = m.group(1)[2:-1]
        check(any(e.get('name') == var for e in c.get('env', [])), f'--listen uses $({var}), which env sets')
    ports = [p['containerPort'] for p in c.get('ports', [])]
    check(port in ports, f'the listening port {port} is a containerPort {ports}')
    annotations = template['metadata'].get('annotations', {})
    check(annotations.get('prometheus.io/scrape') == 'true', 'prometheus.io/scrape: "true"')
    check(annotations.get('prometheus.io/port') == str(port), 'prometheus.io/port is the listening port')
    check(annotations.get('prometheus.io/path', '/metrics') == '/metrics', 'prometheus.io/path is /metrics')
    # What the Finder needs: SYS_PTRACE for other processes' fds and roots,
    # NET_ADMIN for the kernel's process events (else /proc on every call).
    added = set(c.get('securityContext', {}).get('capabilities', {}).get('add', []))
    for cap in ('SYS_PTRACE', 'NET_ADMIN'):
        check(cap in added, f'the container is given {cap}')
    limits = c.get('resources', {}).get('limits', {})
    check('cpu' in limits and 'memory' in limits, 'cpu and memory limits')
    for probe in ('readinessProbe', 'livenessProbe'):
        if probe in c:
            path = c[probe].get('httpGet', {}).get('path')
            check(path in ('/readyz', '/healthz'), f'{probe} asks /readyz or /healthz')


def unit_keys(path):
    """section → {key: [values]} of a unit file."""
    keys, section = {}, None
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in '#;':
                continue
            if line.startswith('['):
                section = line.strip('[]')
                keys.setdefault(section, {})
                continue
            k, _, v = line.partition('=')
            keys[section].setdefault(k.strip(), []).append(v.strip())
    return keys


def check_units(service, socket, cli, grammar):
    sock = unit_keys(socket)
    check(sock['Socket'].get('ListenStream') == ['/run/turtlefinder/turtlefinder.sock'],
          'the socket listens on /run/turtlefinder/turtlefinder.sock')
    check(sock['Socket'].get('SocketMode') == ['0660'], 'the socket has mode 0660')
    svc = unit_keys(service)
    exec_start = svc['Service']['ExecStart'][0].split()
    check(os.path.basename(exec_start[0]) == 'turtlefinder', 'the service runs turtlefinder')
    command, _ = check_command(exec_start[1:], grammar, 'turtlefinder.service')
    check(command == 'serve', 'the service runs `turtlefinder serve`')
    check('turtlefinder.socket' in ' '.join(svc['Unit'].get('Requires', [])), 'the service requires its socket')
    # A sandbox that forbids a family the service opens fails only at run
    # time: unix (engines, its socket) and netlink (process events).
    families = ' '.join(svc['Service'].get('RestrictAddressFamilies', [])).split()
    if families:
        for family in ('AF_UNIX', 'AF_NETLINK'):
            check(family in families, f'RestrictAddressFamilies allows {family}')

    analyze = shutil.which('systemd-analyze')
    check(analyze is not None, 'systemd-analyze is installed')
    if analyze is None:
        return
    # Verified as installed, except that the service starts the built CLI
    # (verify checks that the command exists).
    with tempfile.TemporaryDirectory() as tmp:
        with open(service, encoding='utf-8') as f:
            text = f.read()
        text = re.sub(r'^ExecStart=\S+', 'ExecStart=' + os.path.abspath(cli), text, flags=re.M)
        for name, content in (('turtlefinder.service', text), ('turtlefinder.socket', open(socket).read())):
            with open(os.path.join(tmp, name), 'w', encoding='utf-8') as f:
                f.write(content)
        r = subprocess.run([analyze, 'verify', '--man=no', 'turtlefinder.socket', 'turtlefinder.service'],
                           cwd=tmp, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, SYSTEMD_LOG_LEVEL='notice'))
        out = (r.stdout + r.stderr).strip()
        check(r.returncode == 0 and not out, f'systemd-analyze verify: exit {r.returncode}:\n{out}')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--cli', required=True)
    ap.add_argument('--daemonset', required=True)
    ap.add_argument('--service', required=True)
    ap.add_argument('--socket', required=True)
    a = ap.parse_args()
    grammar = cli_grammar(a.cli)
    check_daemonset(a.daemonset, grammar)
    check_units(a.service, a.socket, a.cli, grammar)
    if failures:
        sys.exit(f'{len(failures)} checks failed')
    print('deployment files: all checks passed')


if __name__ == '__main__':
    main()
