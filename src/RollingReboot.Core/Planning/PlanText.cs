using System.Globalization;

namespace RollingReboot.Core.Planning;

/// <summary>Small helpers for the operator-facing texts of blockers, warnings and reasons.</summary>
internal static class PlanText
{
    private const int MaxNamesListed = 10;

    public static string NameList(IReadOnlyList<string> names) =>
        names.Count <= MaxNamesListed
            ? string.Join(", ", names)
            : string.Join(", ", names.Take(MaxNamesListed)) + Invariant($" and {names.Count - MaxNamesListed} more");

    public static string Plural(int count, string noun) => count == 1 ? noun : noun + "s";

    public static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
