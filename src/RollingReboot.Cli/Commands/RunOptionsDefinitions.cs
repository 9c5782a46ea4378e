using System.CommandLine;

namespace RollingReboot.Cli.Commands;

/// <summary>
/// The options of the plan/run and its subcommands, defined once. Each command builds its own set and adds the
/// options it has. A set per command rather than static instances: System.CommandLine 2.0.0 lets one option sit
/// on several commands, but one shared by the root and a subcommand would take a value typed before the
/// subcommand's name (<c>rollreboot --clustername A resume</c>), which is an error today.
/// </summary>
internal sealed class RunOptionsDefinitions
{
    public Option<string[]> ClusterName { get; } = new("--clustername") { Description = "CloudStack cluster (or, without CloudStack, the pool's name) to reboot; several (comma-separated or repeated) form a fleet, each with its own lock and journal", AllowMultipleArgumentsPerToken = true };
    public Option<bool> AllClusters { get; } = new("--all-clusters") { Description = "Every XenServer cluster of --zone, as a fleet" };
    public Option<int> ParallelClusters { get; } = new("--parallel-clusters") { Description = "Fleet: how many clusters run at the same time (each pool still one host at a time unless --max-hosts-down)", DefaultValueFactory = _ => 1 };
    public Option<string?> Zone { get; } = new("--zone") { Description = "CloudStack zone, when the cluster name is not unique" };
    public Option<bool> Exec { get; } = new("--exec") { Description = "Do it. Without --exec rollreboot only prints the plan and changes nothing" };
    public Option<string> Format { get; } = new("--format") { Description = "Plan output: text, markdown or json", DefaultValueFactory = _ => "text" };
    public Option<FileInfo?> Output { get; } = new("--output") { Description = "Write the plan to this file instead of stdout" };
    public Option<FileInfo?> Report { get; } = new("--report") { Description = "Write the run's report (Markdown, with a Mermaid gantt of what happened) to this file" };
    public Option<FileInfo?> ReportJson { get; } = new("--report-json") { Description = "Write the run's report as JSON to this file" };
    public Option<int> Threads { get; } = new("--threads") { Description = "Parallel migrations per host being emptied (XAPI's own host.evacuate runs 10)", DefaultValueFactory = _ => 10 };
    public Option<string> MaxHostsDown { get; } = new("--max-hosts-down") { Description = "Hosts evacuated and rebooted together when capacity allows (the master always alone); 'auto' picks the number whose plan is estimated fastest", DefaultValueFactory = _ => "1" };
    public Option<string[]> Hosts { get; } = new("--hosts") { Description = "Only these hosts (names or uuids; comma-separated or repeated)", AllowMultipleArgumentsPerToken = true };
    public Option<string[]> IgnoreHosts { get; } = new("--ignore-hosts") { Description = "Leave these hosts alone (names or uuids)", AllowMultipleArgumentsPerToken = true };
    public Option<bool> OnlyNeedingReboot { get; } = new("--only-needing-reboot") { Description = "Only hosts with a pending reboot (reboot_host guidance or updates requiring reboot)" };
    public Option<bool> ReturnVms { get; } = new("--return-vms") { Description = "At the end, migrate VMs back to their original hosts" };
    public Option<string> HostTimeout { get; } = new("--host-timeout") { Description = "How long a host may take to come back (e.g. 20m, 1h, 900s)", DefaultValueFactory = _ => "20m" };
    public Option<bool> BreakLock { get; } = new("--break-lock") { Description = "Break a stale lock left by a dead run (its owner is shown first)" };
    public Option<string?> CmkProfile { get; } = new("--cmk-profile") { Description = "CloudMonkey profile from ~/.cmk/config for the CloudStack URL and keys" };
    public Option<bool> SshAcceptNew { get; } = new("--ssh-accept-new") { Description = "Accept and record unknown SSH host keys on first contact (changed keys are always refused)" };
    public Option<double?> AssumeRebootSeconds { get; } = new("--assume-reboot-seconds") { Description = "Host reboot time used in the estimate (default 300)" };
    public Option<double?> AssumeLinkMbps { get; } = new("--assume-link-mbps") { Description = "Host link bandwidth for migrations in MB/s used in the estimate (default 250)" };
    public Option<string?> MigrationNetwork { get; } = new("--migration-network") { Description = "Live-migrate over this network (name label or uuid; VM.pool_migrate's network option, xapi 1.297.0+): every host needs a plugged PIF with an IP on it" };
    public Option<bool?> Compress { get; } = new("--compress") { Description = "Compress migration streams (VM.pool_migrate's compress option, xapi 22.23.0+); '--compress false' turns it off; without it the pool's migration_compression decides" };
    public Option<FileInfo?> MetricsFile { get; } = new("--metrics-file") { Description = "Write the run's state as Prometheus metrics to this file (node_exporter textfile collector: e.g. /var/lib/prometheus/node-exporter/rollreboot.prom), replaced atomically at each step" };
    public Option<bool> IgnoreRunningTasks { get; } = new("--ignore-running-tasks") { Description = "Start, and go on between hosts, while VMs of the pool are being backed up or copied (snapshot, export, copy...); without it the run refuses to start (exit 3) and waits between hosts" };
    public Option<bool> Verbose { get; } = new("--verbose") { Description = "More detail in the log" };
    public Option<int?> PauseAfter { get; } = new("--pause-after") { Description = "Canary: stop safely after this many hosts (restored, exit 4); continue with 'rollreboot resume'" };
    public Option<string?> WindowEnd { get; } = new("--window-end") { Description = "End of the maintenance window: a time of day (04:00, its next occurrence), a date and time (2026-11-23T04:00, local unless it has an offset) or a duration from now (90m, 2h); no host is started that would end after it" };
    public Option<string?> Window { get; } = new("--window") { Description = "Recurring maintenance window: [DAYS] HH:MM-HH:MM [ZONE], e.g. \"Sat,Sun 01:00-05:00 Europe/Amsterdam\" (days Mon-Fri or Sat,Sun, every day when left out; an IANA zone, the local one when left out; 22:00-02:00 crosses midnight and belongs to the day it starts); started outside it the run does not start (exit 3; resume: exit 4) unless --wait-for-window; inside it no host is started that would end after it" };
    public Option<bool> WaitForWindow { get; } = new("--wait-for-window") { Description = "Started outside --window: wait for its next opening (up to --max-window-wait) instead of exiting; nothing is changed while waiting" };
    public Option<string?> MaxWindowWait { get; } = new("--max-window-wait") { Description = "With --wait-for-window: the longest wait for the next opening (default 24h); an opening further away is exit 3 at once" };
    public Option<string?> PrometheusUrl { get; } = new("--prometheus-url") { Description = "Alert gate, as kured's: Prometheus whose active alerts (/api/v1/alerts) block the start (exit 3) and hold the run between hosts (bounded by --blocker-timeout, then exit 4); an unreachable Prometheus blocks too. ROLLREBOOT_PROMETHEUS_URL keeps a URL with credentials off the command line" };
    public Option<string?> AlertFilter { get; } = new("--alert-filter", "--alert-filter-regexp") { Description = "Alerts whose name this regular expression finds do not count (kured's --alert-filter-regexp)" };
    public Option<bool> AlertFilterMatchOnly { get; } = new("--alert-filter-match-only") { Description = "Only alerts whose name --alert-filter finds count (the filter inverted, as in kured)" };
    public Option<bool> AlertFiringOnly { get; } = new("--alert-firing-only") { Description = "Only firing alerts count, not pending ones" };
    public Option<string?> HostDelay { get; } = new("--host-delay") { Description = "Wait this long between hosts (e.g. 5m)" };
    public Option<string?> PreHostHook { get; } = new("--pre-host-hook") { Description = "Local command run when a host is empty and disabled, before its reboot (env ROLLREBOOT_HOST, _HOST_ADDRESS, _POOL, _PHASE...); exit 70 skips the host, other failures stop the run safely" };
    public Option<string?> PostHostHook { get; } = new("--post-host-hook") { Description = "Local command run when a host is back and enabled; a failure stops the run before the next host" };
    public Option<string?> PreHostCommand { get; } = new("--pre-host-command") { Description = "Command run on the host over SSH when it is empty, before its reboot (after --pre-host-hook); exit 70 skips the host" };
    public Option<string?> PostHostCommand { get; } = new("--post-host-command") { Description = "Command run on the host over SSH when it is back (after --post-host-hook)" };
    public Option<string> HookTimeout { get; } = new("--hook-timeout") { Description = "Time limit for each hook, remote command and check (wall clock)", DefaultValueFactory = _ => "30m" };
    public Option<string?> NeedsRebootCommand { get; } = new("--needs-reboot-command") { Description = "Command run on each host over SSH before planning: exit 0 = needs a reboot, any other exit = leave it alone (e.g. 'test -e /var/run/reboot-required')" };
    public Option<string?> BlockerCommand { get; } = new("--blocker-command") { Description = "Local check (e.g. a monitoring query) that blocks the run while it exits non-zero: before the start (exit 3) and before each host (waits)" };
    public Option<string> BlockerTimeout { get; } = new("--blocker-timeout") { Description = "How long to wait between hosts for --blocker-command to pass before stopping safely (resumable)", DefaultValueFactory = _ => "30m" };
    public Option<bool> Halt { get; } = new("--halt") { Description = "Shut each evacuated host down instead of rebooting it, for hardware work; wait for someone to power it on, then prove the new boot as usual" };
    public Option<string> PowerOnTimeout { get; } = new("--power-on-timeout") { Description = "With --halt: how long to wait for a host to be powered on and back (capped by --window-end)", DefaultValueFactory = _ => "4h" };
    public Option<string> PowerOnDelay { get; } = new("--power-on-delay") { Description = "With --halt: how long a halted host stays off before the pool master powers it on (host.power_on, when its power_on_mode is set); 'manual': never, someone powers it on", DefaultValueFactory = _ => "0s" };
    public Option<int> Retries { get; } = new("--retries") { Description = "Try a host's evacuation that left VMs behind this many more times, after --retry-delay (0 to 10)", DefaultValueFactory = _ => 0 };
    public Option<string> RetryDelay { get; } = new("--retry-delay") { Description = "Wait before each --retries try (e.g. 2m)", DefaultValueFactory = _ => "1m" };
    public Option<int> MaxFailedHosts { get; } = new("--max-failed-hosts") { Description = "Member hosts that may fail (not evacuated: put back as they were; not back: named for an operator) while the run goes on without them; never the master. The run then ends with exit 5", DefaultValueFactory = _ => 0 };
    public Option<bool> ShutdownPinnedVms { get; } = new("--shutdown-pinned-vms") { Description = "VMs that cannot be live-migrated (PCI, vGPU, USB, local disks or ISOs, no PV drivers) stay on their host: shut down right before its reboot (cleanly, powered off after --shutdown-timeout) and started on it again once it is back; without it they block the run" };
    public Option<string> ShutdownTimeout { get; } = new("--shutdown-timeout") { Description = "With --shutdown-pinned-vms: how long a VM gets to shut down cleanly before it is powered off (VM.hard_shutdown)", DefaultValueFactory = _ => "5m" };
    public Option<bool> ApplyUpdates { get; } = new("--apply-updates") { Description = "Install the pool's updates host by host, master first, and do only what they ask for: a reboot (the host evacuated first), a toolstack restart in place, or nothing (livepatched); hosts with nothing to install are left alone. XenServer 8: its update repository (pool.sync_updates, host.apply_updates); XCP-ng: the updater.py plugin (yum). The dry run shows each host's updates and what follows" };
    public Option<bool> ApplyVmGuidances { get; } = new("--apply-vm-guidances") { Description = "With --apply-updates: at the end, reboot the VMs whose updates ask for restart_vm (VM.clean_reboot) and restart the device models of those asking for restart_device_model; without it they are only listed in the report" };
    public Option<string> UpdateTimeout { get; } = new("--update-timeout") { Description = "With --apply-updates: how long one host's installation may take before the run stops safely (resume waits for it)", DefaultValueFactory = _ => "60m" };
    public Option<string?> Notify { get; } = new("--notify") { Description = "POST JSON (Slack-compatible 'text') to this URL on start, each host, failure and finish; ROLLREBOOT_NOTIFY_URL keeps a tokened URL off the command line" };

    public Option<FileInfo?> NotifyTemplate { get; } = new("--notify-template") { Description = "Post this file as each notification's body instead of the default JSON, {{text}} {{event}} {{cluster}} {{pool}} {{runId}} {{host}} {{outcome}} {{time}} filled in (JSON-escaped when the file is JSON); needs --notify" };
    public Option<string[]> MailTo { get; } = new("--mail-to") { Description = "At the end of the run, whatever its outcome, mail a plain-text summary with the Markdown report attached to these addresses (comma-separated or repeated)", AllowMultipleArgumentsPerToken = true };
    public Option<string?> MailCommand { get; } = new("--mail-command") { Description = "What sends the --mail-to message: a command reading an RFC 5322 message on stdin (default '/usr/sbin/sendmail -t -oi'); a failure is logged, never the run's exit code" };
    public Option<string?> MailFrom { get; } = new("--mail-from") { Description = "The From address of the --mail-to message (default rollreboot@ this machine's name)" };
    public Option<bool> NoLive { get; } = new("--no-live") { Description = "Plain log lines on stderr even on a terminal, instead of the live table of hosts" };

    public Option<string> Host { get; } = new("--host") { Description = "The host to empty (evacuate) or bring back (return): name or uuid", Required = true };

    public Option[] Migration => [MigrationNetwork, Compress];

    /// <summary>--apply-updates and its companions: the plan/run and resume take them.</summary>
    public Option[] Updates => [ApplyUpdates, ApplyVmGuidances, UpdateTimeout];

    /// <summary>--retries, --retry-delay, --max-failed-hosts, --shutdown-pinned-vms, --shutdown-timeout: the plan/run and resume take them.</summary>
    public Option[] FailurePolicy => [Retries, RetryDelay, MaxFailedHosts, ShutdownPinnedVms, ShutdownTimeout];

    /// <summary>The window and the alert gate: the plan/run and resume take all of them.</summary>
    public Option[] Gates => [Window, WaitForWindow, MaxWindowWait, PrometheusUrl, AlertFilter, AlertFilterMatchOnly, AlertFiringOnly];

    /// <summary>The hooks, checks, --halt and --notify: the plan/run and resume take all of them.</summary>
    public Option[] Hooks => [PreHostHook, PostHostHook, PreHostCommand, PostHostCommand, HookTimeout, NeedsRebootCommand, BlockerCommand, BlockerTimeout, Halt, PowerOnTimeout, PowerOnDelay, Notify, NotifyTemplate];

    /// <summary>How the run is followed and told at its end: the live view and the summary mail (the plan/run and resume).</summary>
    public Option[] Following => [NoLive, MailTo, MailCommand, MailFrom];
}
