using RollingReboot.Core.Run;

namespace RollingReboot.Core.Tests.Run.Fakes;

/// <summary>The run's log lines, kept (templates with their values).</summary>
internal sealed class CollectingRunLog : IRunLog
{
    public List<string> Lines { get; } = [];

    public void Info(string template, params object?[] values) => Add("I", template, values);

    public void Warn(string template, params object?[] values) => Add("W", template, values);

    public void Error(string template, params object?[] values) => Add("E", template, values);

    private void Add(string level, string template, object?[] values)
    {
        lock (Lines)
        {
            Lines.Add(level + " " + template + " | " + string.Join(", ", values));
        }
    }
}
