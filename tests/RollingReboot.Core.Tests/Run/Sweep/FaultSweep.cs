using System.Globalization;
using System.Text;
using RollingReboot.Core.Run;
using RollingReboot.Core.Run.Engine;
using RollingReboot.Core.Tests.Run.Fakes;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>A seeded pool the sweep runs on.</summary>
internal sealed record SweepPool(string Name, int Hosts, bool Ha, bool Cloud, bool AutoPowerOn = false, bool GuidancePending = false, int MaxHostsDown = 1)
{
    public CrashHarness Harness()
    {
        var options = new RunOptions { Operator = "test", Machine = "test", UseSshProof = false, Plan = RollingReboot.Core.Planning.PlanOptions.Default with { MaxHostsDown = MaxHostsDown } };
        var h = new CrashHarness(hosts: Hosts, ha: Ha, cloudStack: Cloud, options: options, autoPowerOn: AutoPowerOn);
        if (GuidancePending)
        {
            // A host that comes back from its reboot with restart_toolstack pending (xapi 24.10.0+ keeps it disabled).
            h.Pool.Hosts[^1].GuidanceOnReturn = "restart_toolstack";
        }

        return h;
    }
}

/// <summary>One case: the pool, the phase struck (the run, or a restore after a crash mid-run), the call and the fault.</summary>
internal sealed record SweepCase(SweepPool Pool, string Phase, int Call, FaultKind Kind, RunMode Then)
{
    public override string ToString() => $"{Pool.Name} {Phase} call {Call} {Kind}{(Kind == FaultKind.Crash ? " then " + Then : "")}";
}

internal sealed record SweepResult(SweepCase Case, string Struck, RunOutcome? Outcome, string? Failure);

/// <summary>
/// Issue 17's systematic sweep, in memory on the fakes and a fake clock (each case a few milliseconds, deterministic):
/// every call of a run, pool and CloudStack alike, struck in turn by each fault kind; and every call of a restore that
/// follows a crash mid-run. After each case the pool must have lost nothing (no VM halted, no violation, no host
/// rebooted twice), and either the job is done, or the pool is as it was, or the report names operator actions for
/// exactly what is left; then a 'restore' (or, after a crash, 'resume') without faults must finish the job.
/// </summary>
internal static class FaultSweep
{
    public static readonly SweepPool[] Pools =
    [
        new("ha-cloud-4", 4, Ha: true, Cloud: true),
        new("noha-cloud-4", 4, Ha: false, Cloud: true),
        new("ha-nocloud-4", 4, Ha: true, Cloud: false),
        new("ha-cloud-autopoweron-4", 4, Ha: true, Cloud: true, AutoPowerOn: true),
        new("ha-cloud-3", 3, Ha: true, Cloud: true),
        new("noha-nocloud-5", 5, Ha: false, Cloud: false),
        new("noha-cloud-3", 3, Ha: false, Cloud: true),
        new("ha-cloud-6", 6, Ha: true, Cloud: true),
        new("ha-cloud-6-two-down", 6, Ha: true, Cloud: true, MaxHostsDown: 2),
    ];

    private static readonly FaultKind[] s_kinds = [FaultKind.Refused, FaultKind.Unreachable, FaultKind.ReplyLost, FaultKind.Timeout, FaultKind.Crash];

    /// <summary>Every case of the sweep, in a fixed order.</summary>
    public static async Task<List<SweepCase>> CasesAsync()
    {
        var cases = new List<SweepCase>();
        foreach (var pool in Pools)
        {
            int runCalls = await CountAsync(pool, restorePhase: false);
            int restoreCalls = await CountAsync(pool, restorePhase: true);
            foreach (var (phase, calls) in new[] { ("run", runCalls), ("restore", restoreCalls) })
            {
                for (int call = 1; call <= calls; call++)
                {
                    foreach (var kind in s_kinds)
                    {
                        cases.Add(new SweepCase(pool, phase, call, kind, RunMode.Resume));
                        if (kind == FaultKind.Crash)
                        {
                            cases.Add(new SweepCase(pool, phase, call, kind, RunMode.Restore));
                        }
                    }
                }
            }
        }

        return cases;
    }

    private static async Task<int> CountAsync(SweepPool pool, bool restorePhase)
    {
        var h = pool.Harness();
        var faults = new FaultInjector(h.Pool);
        var store = restorePhase ? await CrashMidRunAsync(pool, h) : new MemoryJournalStore();
        Arm(h, faults);
        _ = restorePhase ? await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore) : await h.StartAsync(store, RunMode.Run);
        return faults.Count;
    }

    private static void Arm(CrashHarness h, FaultInjector faults)
    {
        h.WrapPool = p => new FaultyPool(p, faults);
        h.WrapCloud = cs => new FaultyCloud(cs, faults);
    }

    /// <summary>A run killed once its second host is being evacuated (HA off, cluster unmanaged, the lock held).</summary>
    private static async Task<MemoryJournalStore> CrashMidRunAsync(SweepPool pool, CrashHarness h)
    {
        var clean = new MemoryJournalStore();
        var probe = pool.Harness();
        await probe.StartAsync(clean, RunMode.Run);
        var lines = clean.Lines.ToList();
        int disables = 0, at = lines.Count;
        for (int i = 0; i < lines.Count; i++)
        {
            if (lines[i].Contains("\"host.disable.done\"", StringComparison.Ordinal) && ++disables == 2)
            {
                at = i + 2;
                break;
            }
        }

        var store = h.CrashingAt(at);
        await h.StartAsync(store, RunMode.Run);
        return store;
    }

    /// <summary>The case that strikes the first call named <paramref name="call"/> of the phase (a named regression case).</summary>
    public static async Task<SweepCase> CaseAtAsync(SweepPool pool, string phase, string call, FaultKind kind, RunMode then = RunMode.Resume)
    {
        var h = pool.Harness();
        var faults = new FaultInjector(h.Pool);
        var store = phase == "restore" ? await CrashMidRunAsync(pool, h) : new MemoryJournalStore();
        Arm(h, faults);
        _ = phase == "restore" ? await h.ContinueAsync(new MemoryJournalStore(store.Lines), RunMode.Restore) : await h.StartAsync(store, RunMode.Run);
        int index = faults.Calls.IndexOf(call);
        Assert.True(index >= 0, $"no call {call} in the {phase} of {pool.Name}: {string.Join(", ", faults.Calls.Distinct())}");
        return new SweepCase(pool, phase, index + 1, kind, then);
    }

    public static async Task<SweepResult> RunAsync(SweepCase c)
    {
        var h = c.Pool.Harness();
        var faults = new FaultInjector(h.Pool);
        var before = h.Audit();
        RunReport? report;
        // The journal the struck invocation appends to (after a crash mid-run, a copy of that run's lines).
        var store = c.Phase == "restore" ? new MemoryJournalStore((await CrashMidRunAsync(c.Pool, h)).Lines) : new MemoryJournalStore();
        Arm(h, faults);
        faults.StrikeAt = c.Call;
        faults.Kind = c.Kind;
        faults.OnCrash = store.CrashNow;
        try
        {
            report = await PumpedAsync(h, () => c.Phase == "restore"
                ? h.ContinueAsync(store, RunMode.Restore)
                : h.StartAsync(store, RunMode.Run));
        }
        catch (Exception e)
        {
            return new SweepResult(c, faults.Struck ?? "-", null, $"an exception escaped the engine: {e.GetType().Name}: {e.Message}");
        }

        var struck = faults.Struck ?? "(not reached)";
        faults.StrikeAt = null;
        h.WrapPool = p => p;
        h.WrapCloud = cs => cs;
        if (faults.Crashed)
        {
            // Killed: whatever the dead process would have printed never reaches anyone.
            report = null;
            h.Pool.Thaw();
            store = new MemoryJournalStore(store.Lines);
        }

        var failure = Check(h, before, report, c, out var outcome);
        if (failure is not null)
        {
            return new SweepResult(c, struck, outcome, failure);
        }

        // Faults cleared: the next invocation must finish the job (resume after a crash) or put everything back.
        if (outcome != RunOutcome.Done || c.Kind == FaultKind.Crash)
        {
            var then = report is null ? c.Then : RunMode.Restore;
            var journal = new MemoryJournalStore(store.Lines);
            RunReport? next;
            try
            {
                next = await PumpedAsync(h, () => h.ContinueAsync(journal, then));
            }
            catch (Exception e)
            {
                return new SweepResult(c, struck, outcome, $"then {then}: an exception escaped the engine: {e.GetType().Name}: {e.Message}");
            }

            if (next is null && store.Lines.Count == 0)
            {
                return new SweepResult(c, struck, outcome, h.Audit() == before ? null : "killed before its first line, yet the pool changed");
            }

            if (next is not { Outcome: RunOutcome.Done })
            {
                return new SweepResult(c, struck, outcome, $"then {then}: {next?.Outcome} {next?.Message} {string.Join("; ", next?.OperatorActions ?? [])}");
            }

            if (h.Audit() != before)
            {
                return new SweepResult(c, struck, outcome, $"then {then}: the pool is not as it was:\n{before}\n---\n{h.Audit()}");
            }

            if (Lost(h) is { } lost)
            {
                return new SweepResult(c, struck, outcome, $"then {then}: {lost}");
            }

            if (then == RunMode.Resume && h.Pool.Hosts.Any(x => x.BootCount != 1) && !c.Pool.GuidancePending)
            {
                return new SweepResult(c, struck, outcome, $"then resume: boots {string.Join(",", h.Pool.Hosts.Select(x => x.BootCount))}");
            }
        }

        return new SweepResult(c, struck, outcome, null);
    }

    /// <summary>
    /// Runs one invocation on the fake clock, which moves on a second at each read; while the run only waits (a retry's
    /// back-off, a poll), a pump moves it on a second every millisecond, so no wait depends on the machine's speed and
    /// none hangs.
    /// </summary>
    public static async Task<T> PumpedAsync<T>(CrashHarness h, Func<Task<T>> invocation)
    {
        using var stop = new CancellationTokenSource();
        var pump = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                h.Clock.Advance(TimeSpan.FromSeconds(1));
                await Task.Delay(TimeSpan.FromMilliseconds(1), TimeProvider.System, CancellationToken.None);
            }
        });
        try
        {
            return await invocation();
        }
        finally
        {
            await stop.CancelAsync();
            await pump;
        }
    }

    private static string? Lost(CrashHarness h)
    {
        if (h.Pool.Violations.Count > 0)
        {
            return "violations: " + string.Join("; ", h.Pool.Violations);
        }

        if (h.Pool.Vms.Any(v => !v.Running))
        {
            return "VMs not running: " + string.Join(", ", h.Pool.Vms.Where(v => !v.Running).Select(v => v.Name));
        }

        return h.Pool.Hosts.FirstOrDefault(x => x.BootCount > 1) is { } twice ? $"{twice.Name} rebooted {twice.BootCount} times" : null;
    }

    private static string? Check(CrashHarness h, string before, RunReport? report, SweepCase c, out RunOutcome? outcome)
    {
        outcome = report?.Outcome;
        if (Lost(h) is { } lost)
        {
            return lost;
        }

        if (report is null)
        {
            return c.Kind == FaultKind.Crash ? null : "the run died without a report";
        }

        if (report.Message.Contains("unexpected error", StringComparison.Ordinal))
        {
            return "unexpected error: " + report.Message;
        }

        var now = h.Audit();
        switch (report.Outcome)
        {
            case RunOutcome.Done when c.Phase == "run" && h.Pool.Hosts.Any(x => x.BootCount != 1) && !c.Pool.GuidancePending:
                return $"done, but boots {string.Join(",", h.Pool.Hosts.Select(x => x.BootCount))}";
            case RunOutcome.Done or RunOutcome.StoppedRestored or RunOutcome.Blocked when now != before:
                return $"{report.Outcome}, but the pool is not as it was:\n{before}\n---\n{now}";
            case RunOutcome.NeedsOperator when report.OperatorActions.Count == 0:
                return "needs an operator, but names no action: " + report.Message;
            case RunOutcome.NeedsOperator:
                return Unexplained(h, before, report);
            default:
                return null;
        }
    }

    /// <summary>What is left changed that no operator action speaks of (HA off, the cluster unmanaged, a host disabled, the lock).</summary>
    private static string? Unexplained(CrashHarness h, string before, RunReport report)
    {
        var actions = string.Join("\n", report.OperatorActions);
        var left = new List<string>();
        if (before.Contains("ha True", StringComparison.Ordinal) && !h.Pool.Ha.Enabled && !actions.Contains("HA", StringComparison.OrdinalIgnoreCase))
        {
            left.Add("HA left off");
        }

        if (h.Cloud is { ManagedState: not "Managed" } && !actions.Contains("managed", StringComparison.OrdinalIgnoreCase))
        {
            left.Add("cluster left " + h.Cloud.ManagedState);
        }

        foreach (var host in h.Pool.Hosts.Where(x => !x.Enabled && before.Contains(x.Name + ":enabled", StringComparison.Ordinal)))
        {
            if (!actions.Contains(host.Name, StringComparison.Ordinal))
            {
                left.Add(host.Name + " left disabled");
            }
        }

        return left.Count == 0 ? null : $"needs an operator, but the actions do not mention: {string.Join(", ", left)} (actions: {actions})";
    }

    /// <summary>docs/reliability.md's sweep section from a run of the sweep.</summary>
    public static string Report(IReadOnlyList<SweepResult> results, TimeSpan took)
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        sb.Append(inv, $"Cases: {results.Count}; passed: {results.Count(r => r.Failure is null)}; failed: {results.Count(r => r.Failure is not null)}; took {took.TotalSeconds:0} s on this machine.\n\n");
        sb.Append("| pool | phase | " + string.Join(" | ", s_kinds) + " |\n|---|---|" + string.Concat(s_kinds.Select(_ => "---|")) + "\n");
        foreach (var g in results.GroupBy(r => (r.Case.Pool.Name, r.Case.Phase)))
        {
            sb.Append(inv, $"| {g.Key.Name} | {g.Key.Phase} |");
            foreach (var k in s_kinds)
            {
                var of = g.Where(r => r.Case.Kind == k).ToList();
                sb.Append(inv, $" {of.Count(r => r.Failure is null)}/{of.Count} |");
            }

            sb.Append('\n');
        }

        sb.Append("\nInjection points (calls struck, with the number of cases each):\n\n| call | cases | outcomes |\n|---|---|---|\n");
        foreach (var g in results.GroupBy(r => r.Struck).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var outcomes = g.GroupBy(r => r.Outcome?.ToString() ?? "killed").OrderBy(o => o.Key, StringComparer.Ordinal).Select(o => $"{o.Key} {o.Count()}");
            sb.Append(inv, $"| `{g.Key}` | {g.Count()} | {string.Join(", ", outcomes)} |\n");
        }

        foreach (var f in results.Where(r => r.Failure is not null).Take(50))
        {
            sb.Append(inv, $"\n- FAILED {f.Case} at `{f.Struck}`: {f.Failure}");
        }

        return sb.ToString();
    }
}
