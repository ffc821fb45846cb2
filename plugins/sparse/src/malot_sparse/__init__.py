"""malot's ``sparse`` tool plugin: N:M masks, lottery tickets, reprogramming, TAS, N2N and DAS as agent tools."""
