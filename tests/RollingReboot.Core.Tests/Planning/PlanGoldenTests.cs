using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using RollingReboot.Core.Planning;
using RollingReboot.Core.Pool;

namespace RollingReboot.Core.Tests.Planning;

/// <summary>
/// The planner's exact output for a fixed corpus of pools, compared with digests captured from the planner before
/// PlanBuilder was split by job (issue 14). A refactoring of the planner must leave every line of
/// <see cref="PlanGoldenDigests"/> as it is; only an intended change of plans may regenerate it.
/// To regenerate: run this test with ROLLREBOOT_WRITE_PLAN_GOLDEN set to a file path; it writes the new
/// PlanGoldenDigests.cs there (and still fails, so a regeneration is never silent).
/// </summary>
public class PlanGoldenTests
{
    [Fact]
    public void Plan_FixedCorpus_MatchesTheDigestsOfTheOriginalPlanner()
    {
        var actual = Corpus().Select(c => Line(c.Name, EvacuationPlanner.Plan(c.Pool, c.Options, c.Constraints))).ToList();

        string? write = Environment.GetEnvironmentVariable("ROLLREBOOT_WRITE_PLAN_GOLDEN");
        if (!string.IsNullOrEmpty(write))
        {
            File.WriteAllText(write, Source(actual));
            Assert.Fail($"wrote {actual.Count} digests to {write}; unset ROLLREBOOT_WRITE_PLAN_GOLDEN to compare");
        }

        var expected = PlanGoldenDigests.Lines.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var differ = new List<string>();
        for (int i = 0; i < Math.Max(expected.Length, actual.Count); i++)
        {
            string e = i < expected.Length ? expected[i] : "(none)";
            string a = i < actual.Count ? actual[i] : "(none)";
            if (e != a)
            {
                differ.Add($"expected {e}{Environment.NewLine}  actual {a}");
            }
        }

        Assert.True(expected.Length > 1000, $"only {expected.Length} golden digests");
        Assert.True(differ.Count == 0, $"{differ.Count} of {expected.Length} plans differ:{Environment.NewLine}{string.Join(Environment.NewLine, differ.Take(20))}");
    }

    /// <summary>Every field of the plan a run or an operator sees, in plan order, numbers invariant and round-trip.</summary>
    internal static string Digest(Plan plan)
    {
        var sb = new StringBuilder();
        foreach (var h in plan.Hosts)
        {
            sb.Append(CultureInfo.InvariantCulture, $"host|{h.Uuid}|{h.Name}|{h.IsMaster}|{h.Action}|{h.Reason}\n");
        }

        foreach (var s in plan.Steps)
        {
            sb.Append(CultureInfo.InvariantCulture, $"step|{s.Index}|{s.Wave}|{s.HostUuid}|{s.HostName}|{s.IsMaster}|{s.EvacuationSeconds:R}|{s.EstimatedSeconds:R}|{s.StartSeconds:R}\n");
            foreach (var m in s.Migrations)
            {
                sb.Append("move|").Append(Migration(m)).Append('\n');
            }
        }

        foreach (var m in plan.ReturnMigrations)
        {
            sb.Append("return|").Append(Migration(m)).Append('\n');
        }

        foreach (var b in plan.Blockers)
        {
            sb.Append(CultureInfo.InvariantCulture, $"blocker|{b.Code}|{b.Vm}|{b.Host}|{b.Message}|{b.Fix}\n");
        }

        foreach (var w in plan.Warnings)
        {
            sb.Append(CultureInfo.InvariantCulture, $"warning|{w.Code}|{w.Message}|{w.Fix}\n");
        }

        var e = plan.Estimate;
        sb.Append(CultureInfo.InvariantCulture, $"estimate|{e.TotalSeconds:R}|{e.Migrations}|{e.Bytes}|{e.MemoryBytes}|{e.ReturnSeconds:R}\n");
        return sb.ToString();
    }

    private static string Migration(PlannedMigration m) =>
        string.Create(CultureInfo.InvariantCulture, $"{m.VmUuid}|{m.VmName}|{m.FromUuid}|{m.FromName}|{m.ToUuid}|{m.ToName}|{m.MemoryBytes}");

    /// <summary>One line per case: a summary to read, then the SHA-256 of the whole digest.</summary>
    private static string Line(string name, Plan plan)
    {
        string hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Digest(plan))));
        int waves = plan.Steps.Select(s => s.Wave).Distinct().Count();
        int moves = plan.Steps.Sum(s => s.Migrations.Count);
        return string.Create(CultureInfo.InvariantCulture,
            $"{name} steps={plan.Steps.Count} waves={waves} moves={moves} returns={plan.ReturnMigrations.Count} blockers={plan.Blockers.Count} warnings={plan.Warnings.Count} {hash}");
    }

    private static string Source(List<string> lines)
    {
        var sb = new StringBuilder();
        sb.Append("namespace RollingReboot.Core.Tests.Planning;\n\n");
        sb.Append("/// <summary>Digests of the plans for <see cref=\"PlanGoldenTests\"/>' corpus; see that class before changing a line.</summary>\n");
        sb.Append("internal static class PlanGoldenDigests\n{\n");
        sb.Append("    public const string Lines = \"\"\"\n");
        foreach (var line in lines)
        {
            sb.Append("        ").Append(line).Append('\n');
        }

        sb.Append("        \"\"\";\n}\n");
        return sb.ToString();
    }

    internal sealed record GoldenCase(string Name, PoolSnapshot Pool, PlanOptions Options, PlanConstraints Constraints);

    /// <summary>
    /// Random pools of every shape the property tests draw (fixed seeds), larger ones with wider waves, the tight
    /// pools, small pools whose master's VMs need packing (MakeRoom's moves and swaps decide 51 of them), the
    /// hand-built scenarios, the 64-host pool and two fragmented pools that spend MakeRoom's whole budget.
    /// </summary>
    internal static IEnumerable<GoldenCase> Corpus()
    {
        var rng = new Random(14);
        for (int i = 0; i < 1000; i++)
        {
            var spec = new RandomPoolSpec(rng.Next(2, 13), rng.Next(20, 96), rng.Next(1, 4), rng.Next(2) == 0, rng.Next(2) == 0, rng.Next());
            yield return Case(Invariant($"random-{i:D4}"), spec);
        }

        for (int i = 0; i < 60; i++)
        {
            var spec = new RandomPoolSpec(rng.Next(13, 33), rng.Next(40, 96), rng.Next(1, 9), rng.Next(2) == 0, rng.Next(2) == 0, rng.Next());
            yield return Case(Invariant($"large-{i:D2}"), spec);
        }

        for (int seed = 0; seed < 40; seed++)
        {
            var pool = EvacuationPlannerPropertyTests.TightPool(6, 0.83 + (seed % 3 * 0.04), seed).Build();
            var options = PlanOptions.Default with { MaxHostsDown = 1 + (seed % 3), ReturnVms = seed % 2 == 0 };
            yield return new GoldenCase(Invariant($"tight-{seed:D2}"), pool, options, PlanConstraints.None);
        }

        for (int seed = 0; seed < 300; seed++)
        {
            var options = PlanOptions.Default with { MaxHostsDown = 1 + (seed % 2), ReturnVms = seed % 3 == 0 };
            yield return new GoldenCase(Invariant($"pack-{seed:D3}"), PackPool(seed).Build(), options, PlanConstraints.None);
        }

        var scenarios = new (string Name, TestPool Pool)[]
        {
            ("six-hosts-n-plus-1", EvacuationPlannerTests.SixHostsNPlusOne()),
            ("three-hosts-with-blockers", EvacuationPlannerTests.ThreeHostsWithBlockers()),
            ("roomy", EvacuationPlannerTests.Roomy()),
            ("big-64", BigPool()),
            ("fragmented-swaps", Fragmented(4, 4, 50, 80, 600, 64)),
            ("fragmented-moves", Fragmented(64, 108, 6, 11, 0, 0)),
        };
        foreach (var (name, pool) in scenarios)
        {
            var snapshot = pool.Build();
            foreach (int k in (int[])[1, 2, 4])
            {
                foreach (bool back in (bool[])[false, true])
                {
                    var options = PlanOptions.Default with { MaxHostsDown = k, ReturnVms = back };
                    yield return new GoldenCase(Invariant($"{name}-k{k}-{(back ? "back" : "stay")}"), snapshot, options, PlanConstraints.None);
                }
            }
        }
    }

    private static GoldenCase Case(string name, RandomPoolSpec spec)
    {
        var (pool, options, constraints, _) = spec.Build();
        return new GoldenCase(name + " " + spec, pool, options, constraints);
    }

    /// <summary>The pool of <see cref="PlannerPerformanceTests"/>: 64 hosts with 50 VMs each.</summary>
    private static TestPool BigPool()
    {
        var pool = new TestPool { Name = "BIG" };
        var rng = new Random(64);
        long[] sizes = [512, 1024, 2048, 4096, 8192, 16384];
        for (int h = 1; h <= 64; h++)
        {
            pool.AddHost("xen" + h, 512 * 1024, h == 1);
            for (int v = 0; v < 50; v++)
            {
                pool.AddVm($"i-{h}-{v}-VM", "xen" + h, TestPool.WithOverhead(sizes[rng.Next(sizes.Length)]));
            }
        }

        return pool;
    }

    /// <summary>
    /// A few hosts with little room each and a master whose VMs just fit in all of it: first fit alone often
    /// leaves one without room, so the step moves or swaps VMs it placed (MakeRoom).
    /// </summary>
    private static TestPool PackPool(int seed)
    {
        var rng = new Random(seed);
        var pool = new TestPool { Name = "PACK-R" };
        int hosts = rng.Next(3, 7);
        pool.AddHost("h1", 256 * 1024, master: true);
        long room = 0;
        for (int i = 2; i <= hosts; i++)
        {
            long free = rng.Next(8, 33) * 512L;
            int own = rng.Next(1, 4);
            pool.AddHost("h" + i, 4096 + (own * 8 * 1024) + free);
            for (int k = 0; k < own; k++)
            {
                pool.AddVm($"o-{i}-{k}", "h" + i, 8 * TestPool.GiB);
            }

            room += free;
        }

        long budget = room - rng.Next(0, 1024);
        long used = 0;
        int n = 0;
        for (int tries = 0; tries < 200; tries++)
        {
            long size = rng.Next(2, 17) * 512L;
            if (used + size <= budget)
            {
                pool.AddVm($"m-{++n}", "h1", size * TestPool.MiB);
                used += size;
            }
        }

        return pool;
    }

    /// <summary>
    /// A master holding VMs that fill the other (empty, equal) hosts unevenly: some of its VMs fit nowhere though
    /// the pool has the room in total, so re-placing within the step (MakeRoom) runs until its budget is spent.
    /// </summary>
    private static TestPool Fragmented(int hosts, int bigVms, long bigGiB, long freeGiB, int smallVms, long smallMiB)
    {
        var pool = new TestPool { Name = "FRAGMENTED" };
        pool.AddHost("xen1", 4096 + (bigVms * bigGiB * 1024) + (smallVms * smallMiB), master: true);
        for (int h = 2; h <= hosts; h++)
        {
            pool.AddHost("xen" + h, 4096 + (freeGiB * 1024));
        }

        for (int v = 1; v <= bigVms; v++)
        {
            pool.AddVm($"big-{v}-VM", "xen1", bigGiB * TestPool.GiB);
        }

        for (int v = 1; v <= smallVms; v++)
        {
            pool.AddVm($"small-{v}-VM", "xen1", smallMiB * TestPool.MiB);
        }

        return pool;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
