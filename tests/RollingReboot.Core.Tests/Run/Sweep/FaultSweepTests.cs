using System.Diagnostics;

namespace RollingReboot.Core.Tests.Run.Sweep;

/// <summary>
/// The fault sweep. In the suite: a seeded subset (every 13th case, a few hundred). With ROLLREBOOT_SWEEP=full
/// (scripts/fault-sweep.sh): every case, and with ROLLREBOOT_SWEEP_REPORT=FILE its summary written there.
/// </summary>
public sealed class FaultSweepTests
{
    [Fact]
    public async Task Sweep_EveryCase_LosesNothing_AndEndsDoneRestoredOrWithTheExactOperatorActions()
    {
        var all = await FaultSweep.CasesAsync();
        bool full = Environment.GetEnvironmentVariable("ROLLREBOOT_SWEEP") == "full";
        var only = Environment.GetEnvironmentVariable("ROLLREBOOT_SWEEP_CASE");
        var cases = only is { Length: > 0 } ? [.. all.Where(c => c.ToString() == only)] : full ? all : [.. all.Where((_, i) => i % 13 == 5)];
        Assert.True(all.Count >= 5000, $"the sweep has {all.Count} cases");
        Assert.True(full || only is { Length: > 0 } || cases.Count >= 300, $"the suite's subset has {cases.Count} cases");

        var clock = Stopwatch.StartNew();
        var results = new List<SweepResult>();
        foreach (var c in cases)
        {
            // A case takes milliseconds on the fake clock; one that does not end is a hang, reported as a failure
            // (the bound only catches a run that never ends; it decides nothing else).
            var run = FaultSweep.RunAsync(c);
            if (await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60), TimeProvider.System)) != run)
            {
                results.Add(new SweepResult(c, "?", null, "did not end (a wait that nothing wakes on the fake clock)"));
                break;
            }

            results.Add(await run);
        }

        clock.Stop();
        if (Environment.GetEnvironmentVariable("ROLLREBOOT_SWEEP_REPORT") is { Length: > 0 } path)
        {
            await File.WriteAllTextAsync(path, FaultSweep.Report(results, clock.Elapsed));
        }

        var failed = results.Where(r => r.Failure is not null).ToList();
        Assert.True(failed.Count == 0, $"{failed.Count} of {results.Count} cases failed:\n" + string.Join("\n", failed.Take(15).Select(f => $"{f.Case} at {f.Struck}: {f.Failure}")));
        if (only is { Length: > 0 })
        {
            return;
        }

        // Each kind of fault struck real calls, in both phases.
        Assert.All(Enum.GetValues<FaultKind>(), k => Assert.Contains(results, r => r.Case.Kind == k && r.Struck != "(not reached)"));
        Assert.Contains(results, r => r.Case.Phase == "restore" && r.Struck.StartsWith("pool.enable_ha", StringComparison.Ordinal) || r.Case.Phase == "restore" && r.Struck.StartsWith("updateCluster", StringComparison.Ordinal));
    }
}
