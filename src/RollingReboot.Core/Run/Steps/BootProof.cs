using RollingReboot.Core.Pool;
using RollingReboot.Core.Ports;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Run.Journal;
using static RollingReboot.Core.Run.Engine.StepResult;

namespace RollingReboot.Core.Run.Steps;

/// <summary>The host's clock and SSH boot id just before its reboot; <see cref="Failure"/> when SSH refused us.</summary>
public sealed record RebootContext(DateTimeOffset ServerTime, string? BootId, StepResult? Failure = null);

/// <summary>
/// The proof that a host rebooted and is back: XAPI shows a boot time after the one recorded and after the request,
/// its toolstack started after the request, it is live; and SSH answers with a boot id other than the recorded one.
/// </summary>
public static class BootProof
{
    /// <summary>Read concurrently with the evacuation: both stay true until the reboot.</summary>
    public static async Task<RebootContext> CaptureAsync(RunContext run, HostState host, CancellationToken abort)
    {
        var serverTime = await run.Executor.ReadAsync(ct => run.Pool.GetServerTimeAsync(host.Uuid, ct), abort);
        if (run.Services.Probe is not { } probe || !run.Options.UseSshProof)
        {
            return new RebootContext(serverTime, null);
        }

        var answer = await probe.GetBootIdAsync(host.Name, host.Address, abort);
        return answer.Outcome is ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected
            ? new RebootContext(serverTime, null, new Stop($"SSH to {host.Name} failed before its reboot: {answer.Detail}"))
            : new RebootContext(serverTime, answer.BootId);
    }

    /// <summary>Waits (bounded by --host-timeout, or with --halt by --power-on-timeout and the window) for the proof,
    /// journals host.back.</summary>
    public static async Task<StepResult> AwaitAsync(RunContext run, HostState host, DateTimeOffset previousBoot, DateTimeOffset requestedAt, string? previousBootId, bool isMaster, CancellationToken abort)
    {
        var o = run.Options;
        var now = run.Clock.GetUtcNow();
        var deadline = now + o.HostTimeout;
        if (o.Halt)
        {
            // Someone has to power it on: up to --power-on-timeout, not past the window (but always a host timeout).
            var window = run.ClampToWindow(now + o.PowerOnTimeout);
            deadline = window > deadline ? window : deadline;
        }

        var sawDown = false;
        var xapiBack = false;
        while (true)
        {
            abort.ThrowIfCancellationRequested();
            var remaining = deadline - run.Clock.GetUtcNow();
            if (remaining <= TimeSpan.Zero)
            {
                return new Stop(
                    o.Halt
                        ? $"{host.Name} was not powered on and back by {deadline:u} (--halt)"
                        : $"{host.Name} did not come back within {o.HostTimeout.TotalMinutes:0} min of its reboot",
                    NeedsOperator: true,
                    $"check {host.Name} (console / IPMI{(o.Halt ? "; power it on" : "")}); once it is back run 'rollreboot resume --clustername {run.ClusterLabel}' to finish, or 'rollreboot restore --clustername {run.ClusterLabel}'");
            }

            try
            {
                // Only this host is read while waiting for it: two small calls, not the whole pool.
                var h = await run.Pool.ReadHostAsync(host.Uuid, abort);
                sawDown |= !h.Live;
                var newBoot = h.BootTime is { } b && b > previousBoot && b >= requestedAt.AddSeconds(-1);
                var agentNew = h.AgentStartTime is { } a && a >= requestedAt.AddSeconds(-1);
                if (newBoot && agentNew && h.Live)
                {
                    if (!xapiBack)
                    {
                        xapiBack = true;
                        run.Log.Info("{Host} is back in XAPI (boot time {Boot:u})", host.Name, h.BootTime);
                    }

                    var ssh = await SshConfirmsAsync(run, host, previousBootId, abort);
                    if (ssh is not null)
                    {
                        if (ssh.IsContinue)
                        {
                            run.Executor.Record(new HostBack(host.Uuid, h.BootTime?.ToUnixTimeMilliseconds()));
                        }

                        return ssh;
                    }
                }

                if (xapiBack)
                {
                    // XAPI has it back but sshd does not answer yet: nothing in XAPI will change, so poll SSH.
                    await Task.Delay(Min(remaining, TimeSpan.FromSeconds(1)), run.Clock, abort);
                }
                else
                {
                    // Wait for the next change (event.from), bounded.
                    await run.Pool.WaitForChangeAsync(Min(remaining, TimeSpan.FromSeconds(30)), abort);
                }
            }
            catch (PoolOperationException e) when (e.IsTransient)
            {
                // The master is rebooting (or its toolstack is starting): keep asking, bounded.
                if (!isMaster && !sawDown)
                {
                    run.Log.Warn("Pool unreachable while waiting for {Host}: {Error}", host.Name, e.Message);
                }

                await Task.Delay(Min(remaining, TimeSpan.FromSeconds(2)), run.Clock, abort);
            }
        }
    }

    /// <summary>Continue when SSH shows a new boot (or SSH proof is off), Stop when it shows the old one or refuses us,
    /// null while it does not answer yet.</summary>
    private static async Task<StepResult?> SshConfirmsAsync(RunContext run, HostState host, string? previousBootId, CancellationToken abort)
    {
        if (run.Services.Probe is not { } probe || !run.Options.UseSshProof)
        {
            return Continue;
        }

        var result = await probe.GetBootIdAsync(host.Name, host.Address, abort);
        switch (result.Outcome)
        {
            case ProbeOutcome.Answered when result.BootId is { Length: > 0 } id && id != previousBootId:
                run.Log.Info("{Host} answers over SSH with a new boot id", host.Name);
                return Continue;
            case ProbeOutcome.Answered:
                return new Stop($"{host.Name} answers over SSH with the boot id it had before the reboot: it did not reboot", NeedsOperator: true,
                    $"check {host.Name}; then 'rollreboot resume --clustername {run.ClusterLabel}'");
            case ProbeOutcome.AuthFailed or ProbeOutcome.HostKeyRejected:
                return new Stop($"SSH to {host.Name} after its reboot: {result.Detail}", NeedsOperator: true,
                    $"fix SSH access to {host.Name} (key or known_hosts), then 'rollreboot resume --clustername {run.ClusterLabel}'");
            default:
                return null;
        }
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
}
