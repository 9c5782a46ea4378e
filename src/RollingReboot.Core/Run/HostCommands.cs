using System.Globalization;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;

namespace RollingReboot.Core.Run;

/// <summary>The environment variables rollreboot gives the operator's hooks and checks.</summary>
public static class HookVariables
{
    public const string Phase = "ROLLREBOOT_PHASE";
    public const string Host = "ROLLREBOOT_HOST";
    public const string HostUuid = "ROLLREBOOT_HOST_UUID";
    public const string HostAddress = "ROLLREBOOT_HOST_ADDRESS";
    public const string IsMaster = "ROLLREBOOT_IS_MASTER";
    public const string Pool = "ROLLREBOOT_POOL";
    public const string PoolUuid = "ROLLREBOOT_POOL_UUID";
    public const string Cluster = "ROLLREBOOT_CLUSTER";
    public const string RunId = "ROLLREBOOT_RUN_ID";
    public const string NextHost = "ROLLREBOOT_NEXT_HOST";
}

/// <summary>What a pre/post hook decided for a host.</summary>
public enum HookDecision
{
    Continue,
    /// <summary>A pre hook exited 70: leave this host as it is.</summary>
    SkipHost,

    /// <summary>A hook failed (exit, time limit, could not run): stop at this safe point.</summary>
    Stop,
}

/// <summary>A hook's decision; <see cref="Failure"/> says what failed when it is <see cref="HookDecision.Stop"/>.</summary>
public sealed record HookOutcome(HookDecision Decision, string? Failure = null)
{
    public static HookOutcome Continue { get; } = new(HookDecision.Continue);
}

/// <summary>
/// Runs the operator's commands: local hooks with the host in the environment, remote commands on the host
/// over SSH, the needs-reboot check and the blocker check. Knows no process or SSH: only the ports.
/// </summary>
public sealed class HostCommands
{
    private readonly HookOptions _options;
    private readonly ILocalCommandRunner? _local;
    private readonly IRemoteShell? _remote;
    private readonly IRunLog _log;

    public HostCommands(HookOptions options, ILocalCommandRunner? local, IRemoteShell? remote, IRunLog log)
    {
        _options = options;
        _local = local;
        _remote = remote;
        _log = log;
        if ((options.PreHostHook ?? options.PostHostHook ?? options.BlockerCommand) is not null && local is null)
        {
            throw new ArgumentException("local hooks are configured but no local command runner was given", nameof(local));
        }

        if ((options.PreHostCommand ?? options.PostHostCommand ?? options.NeedsRebootCommand) is not null && remote is null)
        {
            throw new ArgumentException("remote commands are configured but there is no SSH access to the hosts", nameof(remote));
        }
    }

    public HookOptions Options => _options;

    /// <summary>The environment a local hook sees (the remote command gets the same variables exported).</summary>
    public static Dictionary<string, string> HostEnvironment(string phase, HostState host, PoolSnapshot pool, string cluster, string runId) => new(StringComparer.Ordinal)
    {
        [HookVariables.Phase] = phase,
        [HookVariables.Host] = host.Name,
        [HookVariables.HostUuid] = host.Uuid,
        [HookVariables.HostAddress] = host.Address,
        [HookVariables.IsMaster] = host.Uuid == pool.MasterUuid ? "1" : "0",
        [HookVariables.Pool] = pool.Name,
        [HookVariables.PoolUuid] = pool.Uuid,
        [HookVariables.Cluster] = cluster,
        [HookVariables.RunId] = runId,
    };

    /// <summary>
    /// The hooks of one phase ("pre": empty and disabled, before the reboot; "post": back and enabled), local first,
    /// then remote. A pre hook exiting 70 skips the host; any other failure is a Stop.
    /// </summary>
    public async Task<HookOutcome> RunHostHooksAsync(string phase, HostState host, PoolSnapshot pool, string cluster, string runId, CancellationToken cancellationToken)
    {
        var pre = phase == "pre";
        var local = pre ? _options.PreHostHook : _options.PostHostHook;
        var remote = pre ? _options.PreHostCommand : _options.PostHostCommand;
        var env = HostEnvironment(phase, host, pool, cluster, runId);
        foreach (var (command, where) in new[] { (local, "local"), (remote, "remote") })
        {
            if (command is null)
            {
                continue;
            }

            var option = $"--{phase}-host-{(where == "local" ? "hook" : "command")}";
            _log.HostPhase(host.Name, $"{phase} {(where == "local" ? "hook" : "command on the host")}");
            var result = where == "local"
                ? await _local!.RunAsync(command, env, _options.HookTimeout, cancellationToken)
                : await _remote!.RunAsync(host.Name, host.Address, ExportThen(env, command), _options.HookTimeout, cancellationToken);
            if (result.Succeeded)
            {
                continue;
            }

            if (pre && result is { Status: CommandStatus.Exited, ExitCode: HookOptions.SkipHostExitCode })
            {
                _log.Warn("{Host}: {Option} exited 70: the host is skipped{Output}", host.Name, option, Tail(result));
                return new HookOutcome(HookDecision.SkipHost);
            }

            var what = result.Status switch
            {
                CommandStatus.TimedOut => $"did not finish within {Units.Duration(_options.HookTimeout.TotalSeconds)}",
                CommandStatus.CouldNotRun => "could not run: " + result.Detail,
                _ => "exited " + result.ExitCode.ToString(CultureInfo.InvariantCulture),
            };
            return new HookOutcome(HookDecision.Stop, pre
                ? $"{option} on {host.Name} {what}{Tail(result)}; stopped before its reboot"
                : $"{option} on {host.Name} {what}{Tail(result)}; stopped before the next host");
        }

        return HookOutcome.Continue;
    }

    /// <summary>
    /// The needs-reboot check on each host (over SSH): true = needs a reboot (exit 0), false = does not (other
    /// exit), null = could not tell (the detail says why).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, (bool? Needs, string Detail)>> CheckNeedsRebootAsync(IReadOnlyList<HostState> hosts, CancellationToken cancellationToken)
    {
        var command = _options.NeedsRebootCommand ?? throw new InvalidOperationException("no --needs-reboot-command");
        using var gate = new SemaphoreSlim(8);
        var results = await Task.WhenAll(hosts.Select(async h =>
        {
            await gate.WaitAsync(cancellationToken);
            try
            {
                var r = await _remote!.RunAsync(h.Name, h.Address, command, _options.HookTimeout, cancellationToken);
                bool? needs = r.Status == CommandStatus.Exited ? r.ExitCode == 0 : null;
                var detail = r.Status switch
                {
                    CommandStatus.Exited => "exited " + r.ExitCode.ToString(CultureInfo.InvariantCulture),
                    CommandStatus.TimedOut => "timed out",
                    _ => r.Detail,
                };
                return (h.Uuid, needs, detail);
            }
            finally
            {
                gate.Release();
            }
        }));
        return results.ToDictionary(r => r.Uuid, r => (r.needs, r.detail), StringComparer.Ordinal);
    }

    /// <summary>The blocker check: null when it passes, else why it blocks.</summary>
    public async Task<string?> CheckBlockerAsync(IReadOnlyDictionary<string, string> environment, CancellationToken cancellationToken)
    {
        if (_options.BlockerCommand is not { } command)
        {
            return null;
        }

        var r = await _local!.RunAsync(command, environment, _options.HookTimeout, cancellationToken);
        return r.Succeeded
            ? null
            : r.Status switch
            {
                CommandStatus.TimedOut => "--blocker-command did not finish in time",
                CommandStatus.CouldNotRun => "--blocker-command could not run: " + r.Detail,
                _ => "--blocker-command exited " + r.ExitCode.ToString(CultureInfo.InvariantCulture) + Tail(r),
            };
    }

    /// <summary>The remote command with the hook variables exported first (SSH servers do not pass the client's environment).</summary>
    internal static string ExportThen(IReadOnlyDictionary<string, string> env, string command) =>
        string.Concat(env.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"export {kv.Key}={ShellQuote(kv.Value)}; ")) + command;

    internal static string ShellQuote(string value) => "'" + value.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Tail(CommandResult r)
    {
        var line = r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        return line is null ? "" : $" ({(line.Length > 200 ? line[..200] + "..." : line)})";
    }
}
