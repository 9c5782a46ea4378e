using System.Text.Json.Nodes;
using CsCheck;
using Microsoft.Extensions.Time.Testing;
using RollingReboot.Core.Run;

namespace RollingReboot.Core.Tests.Run;

public sealed class JournalTests
{
    private sealed class MemoryStore(IEnumerable<string>? lines = null) : IJournalStore
    {
        public List<string> Lines { get; } = lines?.ToList() ?? [];

        public void Append(string line) => Lines.Add(line);

        public IReadOnlyList<string> ReadAll() => Lines.ToList();
    }

    private static MemoryStore SampleJournal()
    {
        var store = new MemoryStore();
        var journal = new RunJournal(store, new FakeTimeProvider());
        journal.Write("run.start", new Dictionary<string, object?> { ["runId"] = "r1", ["pool"] = "pool-uuid", ["cluster"] = "C" });
        journal.Write("lock.acquired");
        journal.Write("originals", new Dictionary<string, object?>
        {
            ["ha"] = new Dictionary<string, object?> { ["enabled"] = true, ["heartbeatSrs"] = new[] { "sr1" }, ["configuration"] = new Dictionary<string, string> { ["timeout"] = "180" }, ["hostFailuresToTolerate"] = 1L, ["allowOvercommit"] = true },
            ["cloudstackManagedState"] = "Managed",
            ["hostEnabled"] = new Dictionary<string, bool> { ["h1"] = true, ["h2"] = false },
            ["vmHost"] = new Dictionary<string, string?> { ["vm1"] = "h1" },
        });
        journal.Write("ha.disable.done");
        journal.Write("cloudstack.unmanage.intent");
        journal.Write("host.disable.intent", new Dictionary<string, object?> { ["host"] = "h1" });
        journal.Write("host.reboot.intent", new Dictionary<string, object?> { ["host"] = "h1", ["bootTime"] = 1000L });
        return store;
    }

    [Fact]
    public void From_HostSkippedByItsPreHook_IsRememberedForResume()
    {
        var store = SampleJournal();
        var journal = new RunJournal(store, new FakeTimeProvider());
        journal.Write("host.skipped", new Dictionary<string, object?> { ["host"] = "h2", ["name"] = "xen2", ["reason"] = "pre hook exit 70" });
        var state = JournalState.From(RunJournal.Read(store));
        Assert.Equal(["h2"], state.SkippedByHook);
        Assert.Empty(JournalState.From(RunJournal.Read(SampleJournal())).SkippedByHook);
    }

    [Fact]
    public void From_JournalOfARunKilledMidReboot_SaysWhatToRestore()
    {
        var state = JournalState.From(RunJournal.Read(SampleJournal()));
        Assert.Equal("r1", state.RunId);
        Assert.False(state.Ended);
        Assert.True(state.LockHeld);
        Assert.True(state.HaDisabledByRun);
        Assert.True(state.UnmanagedByRun);
        Assert.Contains("h1", state.DisabledByRun);
        Assert.Equal(180, state.Original!.Ha.TimeoutSeconds);
        Assert.False(state.Original.HostEnabled["h2"]);
        Assert.Equal(1000L, state.RebootRequestedBootTime["h1"]);
    }

    [Fact]
    public void Read_TornLastLine_IsIgnored_CorruptMiddleLine_IsJournalException()
    {
        var store = SampleJournal();
        store.Lines.Add("{\"t\":\"2026-");
        Assert.Equal(7, RunJournal.Read(store).Count);

        store.Lines.Insert(2, "garbage");
        Assert.Throws<JournalException>(() => RunJournal.Read(store));
    }

    [Fact]
    public void Read_NotARollrebootJournal_IsJournalException() =>
        Assert.Throws<JournalException>(() => RunJournal.Read(new MemoryStore(["{\"kind\":\"something\"}"])));

    [Fact]
    public void ReadAndFold_Garbage_OnlyJournalException()
    {
        var valid = SampleJournal().Lines;
        Gen.Select(Gen.Int[0, valid.Count - 1], Gen.String, Gen.Int[0, 3]).Sample((index, junk, mode) =>
        {
            var lines = valid.ToList();
            switch (mode)
            {
                case 0:
                    lines[index] = junk;
                    break;
                case 1:
                    // Same JSON shape, fields of the wrong type.
                    var o = JsonNode.Parse(lines[index])!.AsObject();
                    foreach (var key in o.Select(kv => kv.Key).ToList())
                    {
                        if (key != "kind")
                        {
                            o[key] = junk;
                        }
                    }

                    lines[index] = o.ToJsonString();
                    break;
                case 2:
                    lines.Insert(index, junk);
                    break;
                default:
                    lines[index] = lines[index][..Math.Min(lines[index].Length, junk.Length)];
                    break;
            }

            try
            {
                JournalState.From(RunJournal.Read(new MemoryStore(lines)));
            }
            catch (JournalException)
            {
            }
        }, iter: 2000);
    }
}
