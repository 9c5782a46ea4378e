namespace RollingReboot.Core.Planning;

/// <summary>
/// Orders names as an operator reads them: runs of digits compare by value, so xen2 comes before xen10.
/// Names that compare equal this way fall back to ordinal order, so the order is total and culture-free.
/// </summary>
public sealed class NaturalNameComparer : IComparer<string>
{
    public static NaturalNameComparer Instance { get; } = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y))
        {
            return 0;
        }

        if (x is null)
        {
            return -1;
        }

        if (y is null)
        {
            return 1;
        }

        int i = 0, j = 0;
        while (i < x.Length && j < y.Length)
        {
            if (char.IsAsciiDigit(x[i]) && char.IsAsciiDigit(y[j]))
            {
                int si = i, sj = j;
                while (si < x.Length && x[si] == '0' && si + 1 < x.Length && char.IsAsciiDigit(x[si + 1]))
                {
                    si++;
                }

                while (sj < y.Length && y[sj] == '0' && sj + 1 < y.Length && char.IsAsciiDigit(y[sj + 1]))
                {
                    sj++;
                }

                int ei = si, ej = sj;
                while (ei < x.Length && char.IsAsciiDigit(x[ei]))
                {
                    ei++;
                }

                while (ej < y.Length && char.IsAsciiDigit(y[ej]))
                {
                    ej++;
                }

                int lengthOrder = (ei - si).CompareTo(ej - sj);
                if (lengthOrder != 0)
                {
                    return lengthOrder;
                }

                int digits = string.CompareOrdinal(x, si, y, sj, ei - si);
                if (digits != 0)
                {
                    return digits;
                }

                i = ei;
                j = ej;
                continue;
            }

            int c = x[i].CompareTo(y[j]);
            if (c != 0)
            {
                return c;
            }

            i++;
            j++;
        }

        int rest = (x.Length - i).CompareTo(y.Length - j);
        return rest != 0 ? rest : string.CompareOrdinal(x, y);
    }
}
