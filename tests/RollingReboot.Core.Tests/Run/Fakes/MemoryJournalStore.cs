using RollingReboot.Core.Run.Journal;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>A journal in memory. With <see cref="CrashAt"/> set it "crashes" at that append (1-based): the line is not
/// written, <see cref="SimulatedCrash"/> is thrown, and every later append fails the same way, as after kill -9.</summary>
internal sealed class MemoryJournalStore(IEnumerable<string>? lines = null) : IJournalStore
{
    private readonly Lock _lock = new();

    public List<string> Lines { get; } = lines?.ToList() ?? [];

    public int? CrashAt { get; init; }

    /// <summary>Crashes at the first append whose line this says yes to (as <see cref="CrashAt"/>, by content).</summary>
    public Func<string, bool>? CrashOn { get; init; }

    public int Appends { get; private set; }

    public bool Crashed { get; private set; }

    /// <summary>Called at the moment of the crash (the fake pool freezes: a dead process calls nothing).</summary>
    public Action? OnCrash { get; init; }

    /// <summary>The process dies now: nothing more is written.</summary>
    public void CrashNow()
    {
        lock (_lock)
        {
            Crashed = true;
        }
    }

    public void Append(string line)
    {
        lock (_lock)
        {
            Appends++;
            if (Crashed || Appends == CrashAt || CrashOn?.Invoke(line) == true)
            {
                if (!Crashed)
                {
                    Crashed = true;
                    OnCrash?.Invoke();
                }

                throw new SimulatedCrash();
            }

            Lines.Add(line);
        }
    }

    public IReadOnlyList<string> ReadAll()
    {
        lock (_lock)
        {
            return Lines.ToList();
        }
    }
}

/// <summary>The process died here.</summary>
internal sealed class SimulatedCrash : Exception
{
    public SimulatedCrash() : base("simulated crash (kill -9)") { }

    public SimulatedCrash(string message) : base(message) { }

    public SimulatedCrash(string message, Exception inner) : base(message, inner) { }
}
